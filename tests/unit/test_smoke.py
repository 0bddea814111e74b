"""`make smoke`'s checks, offline: what each line says for the answers a broken or a working bridge gives.

The deployed target is a moto CloudFormation stack shaped like ours (tests/unit/test_target.py) with the vendor
secrets' outputs; HTTP answers come from a stand-in for ``ops.smoke.fetch`` (unit tests open no socket). The
same checks run against a real ``make run`` stack in tests/integration/test_smoke_local.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from email.message import Message
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import boto3
import jwt
import pytest

from local.mint_login_token import mint
from local.template import load_template
from ops import smoke
from ops.smoke import Answer, Check, Probe, Unreachable, probe_for
from ops.target import Target, _settings, resolve
from sso_bridge.jti_store import SMOKE_EMAIL
from sso_bridge.login_token import check_email
from tests.helpers import EVENTS, LOGIN_TOKEN_KEY, SECRET_IDS, VENDOR_KEYS, WORKSPACE, LambdaContext, load_event
from tests.unit.test_target import FUNCTION_URLS, KUSTOMER_HOST, STACK, create_bridge_stack

API = "https://abc123.execute-api.eu-west-1.amazonaws.com"
HAPPYFOX_HOST = "acme.happyfox.com"
PLACEHOLDER = "REPLACE_ME with the key from ClickFunnels (Site & Blog > Customer Center)"
TOKEN = jwt.encode({"sub": "x", "iat": 1}, "k" * 32, algorithm="HS256")
HSTS = {"Strict-Transport-Security": "max-age=31536000; includeSubDomains"}


def answer(status: int, headers: Mapping[str, str] | None = None, body: object = b"") -> Answer:
    message = Message()
    for name, value in (headers or {}).items():
        message[name] = value
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Answer(status, message, raw)


def redirect(location: str) -> Answer:
    return answer(302, {"Location": location, **HSTS})


CF = Probe("clickfunnels", "/clickfunnels/sso", host=WORKSPACE)


def problem_of(result: Answer, probe: Probe = CF, origins: Mapping[str, str] | None = None) -> str | None:
    return smoke.redirect_problem(result, probe, bridge_hosts=[urlsplit(API).hostname or ""], origins=origins or {})


# The reserved address.


def test_the_smoke_address_is_one_the_bridge_accepts_and_nobody_reads() -> None:
    assert check_email(SMOKE_EMAIL) == SMOKE_EMAIL
    assert SMOKE_EMAIL.endswith(".invalid")  # RFC 2606: never a mailbox
    assert smoke.SMOKE_EMAIL is SMOKE_EMAIL  # one constant, the layer's


# A redirect to the vendor carrying a token.


def test_a_redirect_to_the_vendor_with_a_token_passes() -> None:
    assert problem_of(redirect(f"https://{WORKSPACE}/sso?identifier=x&strategy=email&token={TOKEN}")) is None


@pytest.mark.parametrize(
    ("location", "says"),
    [
        (f"https://evil.example/sso?token={TOKEN}", "redirects to https://evil.example/sso, not to the vendor's host"),
        (f"http://{WORKSPACE}/sso?token={TOKEN}", f"redirects to http://{WORKSPACE}/sso, not to https://{WORKSPACE}"),
        (
            f"https://{WORKSPACE}/sso?identifier=x&strategy=email",
            f"redirects to https://{WORKSPACE}/sso without a token",
        ),
        (f"https://{WORKSPACE}/sso?token=not-a-jwt", f"redirects to https://{WORKSPACE}/sso without a token"),
        (f"/sso?token={TOKEN}", "redirects to a relative address"),
    ],
)
def test_a_redirect_elsewhere_or_without_a_token_fails_and_never_shows_the_query(location: str, says: str) -> None:
    problem = problem_of(redirect(location))
    assert problem is not None
    assert problem.startswith(says)
    assert TOKEN not in problem
    assert "?" not in problem


def test_an_answer_that_is_no_redirect_says_the_bridge_s_reason() -> None:
    refused = answer(503, {"Content-Type": "application/json"}, {"error": "x", "reason": "secret_not_set"})
    assert problem_of(refused) == "answered 503 (secret_not_set), not a redirect"
    page = answer(400, {"Content-Type": "text/html"}, b"<h1>" + TOKEN.encode() + b"</h1>")
    assert problem_of(page) == "answered 400, not a redirect"


def test_the_local_stand_in_answers_for_the_vendor_host() -> None:
    origins = {WORKSPACE: "http://localhost:3004"}
    assert problem_of(redirect(f"http://localhost:3004/sso?token={TOKEN}"), origins=origins) is None
    assert problem_of(redirect(f"http://localhost:3005/sso?token={TOKEN}"), origins=origins) is not None


def test_a_vendor_with_no_known_host_must_at_least_leave_the_bridge() -> None:
    probe = Probe("nolt", "/nolt/sso")
    assert problem_of(redirect(f"https://acme.nolt.io/sso/x?jwt={TOKEN}"), probe) is None
    back = problem_of(redirect(f"{API}/_platform/login?return_to=x"), probe)
    assert back is not None
    assert "back to the bridge" in back


# HEAD, 404, HSTS.


def test_head_must_mint_nothing() -> None:
    assert smoke.head_problem(answer(200, HSTS)) is None
    problem = smoke.head_problem(answer(302, {"Location": f"https://{WORKSPACE}/sso?token={TOKEN}"}))
    assert problem == "HEAD answered 302 with a Location: a HEAD must mint nothing"


@pytest.mark.parametrize(
    ("result", "problem"),
    [
        (answer(404, {"Content-Type": "application/json"}, {"message": "Not Found"}), None),  # API Gateway's own
        (answer(404, {"Content-Type": "application/json"}, {"error": "not_found", "reason": "not_found"}), None),
        (answer(404, {"Content-Type": "text/html"}, b"<h1>Page not found</h1>"), "404 is text/html, not a JSON object"),
        (answer(200, {"Content-Type": "text/html"}, b"<h1>index</h1>"), "answered 200, not 404"),
        (answer(404, {"Content-Type": "application/json"}, b"[]"), "404 is application/json, not a JSON object"),
    ],
)
def test_an_unknown_path_is_a_json_404(result: Answer, problem: str | None) -> None:
    assert smoke.json_404_problem(result) == problem


def test_hsts_on_every_answer() -> None:
    assert smoke.hsts_problem({"http-api": answer(302, HSTS), "function-url": answer(302, HSTS)}) is None
    problem = smoke.hsts_problem({"http-api": answer(302, HSTS), "function-url": answer(302)})
    assert problem == "no Strict-Transport-Security on the function-url answer"


def test_a_line_per_check() -> None:
    assert Check("clickfunnels", "http-api redirect carries a token").line() == (
        "ok   clickfunnels  http-api redirect carries a token"
    )
    assert Check("kustomer", "function URL answers", "answered 403").line() == (
        "FAIL kustomer      function URL answers: answered 403"
    )


# What to try at each vendor, from the stack's settings and template.yaml.


def test_each_vendor_s_sign_in_comes_from_the_template_and_the_stack_settings() -> None:
    settings = {
        "CLICKFUNNELS_WORKSPACE_DOMAIN": WORKSPACE,
        "KUSTOMER_REDIRECT_HOSTS": f" {KUSTOMER_HOST.upper()} ,help.example.com",
        "HAPPYFOX_ACCOUNT_URL": f"https://{HAPPYFOX_HOST}",
    }
    assert probe_for("clickfunnels", settings.get) == Probe("clickfunnels", "/clickfunnels/sso", host=WORKSPACE)
    assert probe_for("happyfox", settings.get) == Probe("happyfox", "/happyfox/login", host=HAPPYFOX_HOST)
    assert probe_for("kustomer", settings.get) == Probe(
        "kustomer", "/kustomer/login", {"kustomerRedirectUri": f"https://{KUSTOMER_HOST}/"}, KUSTOMER_HOST
    )
    portal_only = {"KUSTOMER_PORTAL_URL": "https://help.example.com/login"}
    assert probe_for("kustomer", portal_only.get).host == "help.example.com"


def one_function(vendor: str, routes: dict[str, tuple[str, str]]) -> dict[str, object]:
    """A template with ``vendor``'s function alone: its HTTP API routes by event name, (method, path)."""
    events = {name: {"Type": "HttpApi", "Properties": {"Method": m, "Path": p}} for name, (m, p) in routes.items()}
    properties = {"CodeUri": f"functions/{vendor}", "Handler": "app.lambda_handler", "Events": events}
    return {"Resources": {f"{vendor.title()}Function": {"Type": "AWS::Serverless::Function", "Properties": properties}}}


def test_a_vendor_added_to_the_template_is_probed_on_its_own_route() -> None:
    # A vendor with no stand-in yet: the simplest portal's probe (no query, any host but the bridge's)
    template = one_function(
        "nolt", {"Head": ("HEAD", "/nolt/sso"), "Brand": ("GET", "/nolt/{board}/sso"), "Sso": ("GET", "/nolt/sso")}
    )
    none: dict[str, str] = {}
    assert probe_for("nolt", none.get, template) == Probe("nolt", "/nolt/sso")


def test_a_vendor_s_sign_in_route_is_its_stand_in_s_login_path_whatever_the_route_order() -> None:
    # Zendesk's function has two GET routes; listed logout first, smoke must still sign in at the login route
    template = one_function("zendesk", {"Logout": ("GET", "/zendesk/logout"), "Login": ("GET", "/zendesk/login")})
    none: dict[str, str] = {}
    assert probe_for("zendesk", none.get, template).route == "/zendesk/login"


# The vendor key, on a deployed stack.


def deployed_stack(aws: Any, *, outputs: Mapping[str, str] | None = None, drop: tuple[str, ...] = ()) -> Any:
    """A moto stack with the bridge's outputs plus each vendor secret's ``<Secret>Arn`` output."""
    arns = {
        f"{name}SecretArn": aws.describe_secret(SecretId=SECRET_IDS[vendor])["ARN"]
        for vendor, name in (("clickfunnels", "ClickFunnels"), ("kustomer", "Kustomer"), ("happyfox", "HappyFox"))
    }
    extra = {**arns, **(outputs or {})}
    create_bridge_stack(drop_outputs=drop, parameters={"HappyFoxAccountUrl": f"https://{HAPPYFOX_HOST}"})
    cloudformation = boto3.client("cloudformation")
    body = cloudformation.get_template(StackName=STACK)["TemplateBody"]
    body = json.loads(body) if isinstance(body, str) else dict(body)
    body["Outputs"] |= {key: {"Value": value} for key, value in extra.items() if key not in drop}
    parameters = cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]["Parameters"]
    cloudformation.update_stack(StackName=STACK, TemplateBody=json.dumps(body), Parameters=parameters)
    return resolve(False, STACK)


def test_a_set_vendor_key_passes(aws: Any) -> None:
    target = deployed_stack(aws)
    assert target.vendor_secret_id("clickfunnels").startswith("arn:aws:secretsmanager:eu-west-1:")
    assert smoke.key_problem(target, "clickfunnels") is None


def test_the_placeholder_names_the_vendor_and_prints_the_command_that_sets_the_key(aws: Any) -> None:
    target = deployed_stack(aws)
    aws.put_secret_value(SecretId=SECRET_IDS["clickfunnels"], SecretString=PLACEHOLDER)
    arn = target.vendor_secret_id("clickfunnels")
    assert smoke.key_problem(target, "clickfunnels") == (
        "the secret holds the template's placeholder; with KEY set to the key from ClickFunnels "
        "(Site & Blog > Customer Center), run: aws secretsmanager put-secret-value --region eu-west-1 "
        f'--secret-id {arn} --secret-string "$KEY"'
    )
    assert smoke.key_problem(target, "kustomer") is None


def test_a_stack_without_the_vendor_secret_output_says_what_to_do(aws: Any) -> None:
    target = deployed_stack(aws, drop=("HappyFoxSecretArn",))
    problem = smoke.key_problem(target, "happyfox")
    assert problem == f"stack {STACK} in eu-west-1 has no output HappyFoxSecretArn: deploy the current template.yaml"


def test_the_oidc_issuer_output_is_the_target_s_setting(aws: Any) -> None:
    assert deployed_stack(aws).setting("OIDC_ISSUER") is None
    issuer = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc"
    assert deployed_stack_again(aws, issuer).setting("OIDC_ISSUER") == issuer


def test_without_the_output_the_issuer_is_the_parameter_or_cognito_s() -> None:
    template = load_template()
    assert (
        _settings(template, {"OidcIssuer": "https://idp.example.com"}, {})["OIDC_ISSUER"] == "https://idp.example.com"
    )
    cognito = {"CognitoIssuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc"}
    assert _settings(template, {"OidcIssuer": ""}, cognito)["OIDC_ISSUER"] == cognito["CognitoIssuer"]
    assert "OIDC_ISSUER" not in _settings(template, {"OidcIssuer": ""}, {})


def deployed_stack_again(aws: Any, issuer: str) -> Any:
    boto3.client("cloudformation").delete_stack(StackName=STACK)
    return deployed_stack(aws, outputs={"OidcIssuerUrl": issuer})


# Every check against a deployed stack, its HTTP answered by a stand-in.


Handler = Callable[[str, str, Mapping[str, str]], Answer]


def bridge(*, function_url_status: int = 302) -> tuple[Handler, list[tuple[str, str]]]:
    """Answers like a working bridge: sign-ins redirect to the vendor with a token, unknown paths are JSON 404s."""
    calls: list[tuple[str, str]] = []
    hosts = {"clickfunnels": WORKSPACE, "kustomer": KUSTOMER_HOST, "happyfox": HAPPYFOX_HOST}

    def handle(method: str, url: str, headers: Mapping[str, str]) -> Answer:
        calls.append((method, url))
        parts = urlsplit(url)
        if parts.path.endswith(smoke.PROBE_PATH):
            return answer(404, {"Content-Type": "application/json", **HSTS}, {"message": "Not Found"})
        base = f"{parts.scheme}://{parts.netloc}/"
        vendor = next((v for v, u in FUNCTION_URLS.items() if u == base), None)
        if vendor is not None and function_url_status == 403:
            return answer(403, {"Content-Type": "application/json"}, {"Message": "Forbidden"})
        vendor = vendor or parts.path.split("/")[1]
        claims = jwt.decode(
            parse_qs(parts.query)["login_token"][0], LOGIN_TOKEN_KEY, algorithms=["HS256"], audience=vendor
        )
        assert (claims["email"], claims["exp"] - claims["iat"]) == (SMOKE_EMAIL, smoke.TOKEN_TTL)
        if method == "HEAD":
            return answer(200, HSTS)
        return redirect(f"https://{hosts[vendor]}/sso?token={TOKEN}")

    return handle, calls


def run(monkeypatch: pytest.MonkeyPatch, handler: Handler) -> tuple[int, str, str]:
    def fetch(method: str, url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 0) -> Answer:
        return handler(method, url, headers or {})

    monkeypatch.setattr(smoke, "fetch", fetch)
    out, err = io.StringIO(), io.StringIO()
    status = smoke.main(["--stack-name", STACK], out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def test_a_working_stack_passes_every_check_and_prints_no_secret(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    deployed_stack(aws)
    handler, calls = bridge()
    status, out, err = run(monkeypatch, handler)
    assert (status, err) == (0, ""), out
    lines = out.splitlines()
    assert lines[0] == f"smoke test of stack {STACK} in eu-west-1 as {SMOKE_EMAIL}"
    assert lines[-1] == f"all {len(lines) - 2} checks passed"
    for vendor in FUNCTION_URLS:
        mine = [line for line in lines if line.split()[1:2] == [vendor]]
        assert [line.split(None, 2)[2] for line in mine] == [
            "http-api redirect carries a token",
            "http-api HEAD mints nothing",
            "function URL answers",
            "function-url redirect carries a token",
            "function-url HEAD mints nothing",
            "function-url 404 is JSON",
            "HSTS on every answer",
            "vendor key is set",
        ]
    # The HTTP API route and the function URL of each vendor, never a redirect followed
    assert ("GET", f"{API}/clickfunnels/sso") in [(m, u.split("?")[0]) for m, u in calls]
    assert all(urlsplit(url).hostname not in (WORKSPACE, KUSTOMER_HOST, HAPPYFOX_HOST) for _, url in calls)
    for secret in (LOGIN_TOKEN_KEY, *VENDOR_KEYS.values(), TOKEN):
        assert secret not in out
    assert not re.search(r"eyJ[A-Za-z0-9_-]+\.", out)


def test_a_function_url_without_public_access_is_named(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    deployed_stack(aws)
    handler, _ = bridge(function_url_status=403)
    status, out, _ = run(monkeypatch, handler)
    assert status == smoke.EXIT_FAILED
    assert "FAIL clickfunnels  function URL answers: 403 Forbidden: its public-access permissions are missing" in out
    assert out.splitlines()[-1].endswith("checks failed (clickfunnels, kustomer, happyfox)")


def test_only_the_vendors_the_stack_has_are_checked(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    deployed_stack(aws, drop=("ClickFunnelsFunctionUrl", "KustomerFunctionUrl"))
    handler, _ = bridge()
    status, out, _ = run(monkeypatch, handler)
    assert status == 0, out
    assert "clickfunnels" not in out
    assert "kustomer" not in out
    assert "ok   happyfox      vendor key is set" in out


def test_a_bridge_that_never_answers_is_unreachable(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    deployed_stack(aws)

    def down(method: str, url: str, headers: Mapping[str, str]) -> Answer:
        raise Unreachable(f"cannot reach {url.split('?')[0]}: Connection refused")

    status, out, err = run(monkeypatch, down)
    assert status == 3
    where = f"stack {STACK} in eu-west-1"
    assert err == f"python -m ops.smoke: error: no answer from {where}: is it running, and are its URLs right?\n"
    assert "login_token" not in out + err


def test_no_local_stack_is_exit_3_and_a_bad_stack_name_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOCAL_STACK_FILE", str(tmp_path / "none.json"))
    err = io.StringIO()
    assert smoke.main(["--local"], out=io.StringIO(), err=err) == 3
    assert err.getvalue().startswith("python -m ops.smoke: error: no local stack is running")
    with pytest.raises(SystemExit) as exited:
        smoke.main(["--stack-name", "not a stack"])
    assert exited.value.code == 2


# Each vendor's own probe (StandInSpec.probe), held against the vendor's function: what smoke sends is what the
# vendor sends, and what the function answers is what smoke accepts.

VENDORS = smoke._template_order(None)
API_HOST = urlsplit(API).hostname or ""
ZD_ACCOUNT = "acme.zendesk.com"  # tests/helpers.py ZENDESK_ACCOUNT_URL's host


def response_answer(response: Mapping[str, Any]) -> Answer:
    """A Lambda proxy response as smoke's HTTP client returns it (its cookies as Set-Cookie headers)."""
    message = Message()
    for name, value in (response.get("headers") or {}).items():
        message[name] = value
    for cookie in response.get("cookies") or []:
        message["Set-Cookie"] = cookie
    body = response.get("body") or ""
    raw = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
    return Answer(response["statusCode"], message, raw)


def ask(module: Any, vendor: str, query: Mapping[str, str], method: str = "GET") -> Answer:
    """The vendor function's answer to its HTTP API sign-in route (the sample event) with ``query``."""
    [sample] = [path.stem for path in EVENTS.glob(f"{vendor}-*-httpapi.json") if "logout" not in path.stem]
    event = load_event(sample, query=urlencode(query), headers={"accept": "text/html"})
    event["requestContext"]["http"]["method"] = method
    return response_answer(module.lambda_handler(event, LambdaContext()))


def smoke_query(probe: Probe) -> dict[str, str]:
    login = mint(SMOKE_EMAIL, [probe.vendor], LOGIN_TOKEN_KEY, name="sso-bridge smoke", ttl=smoke.TOKEN_TTL)
    return {**probe.query, "login_token": login}


def judged(result: Answer, probe: Probe) -> str | None:
    return smoke.sign_in_problem(result, probe, bridge_hosts=[API_HOST], origins={})


def test_every_template_vendor_is_probed() -> None:
    assert {"zendesk", "canny", "discourse", "freshworks"} <= set(VENDORS)


@pytest.mark.parametrize("vendor", VENDORS)
def test_each_vendors_function_answers_its_probe_as_the_vendor_takes_it(
    jti_table: Any, link_tables: Any, load_function: Callable[..., Any], vendor: str
) -> None:
    # Given the vendor's function and the probe smoke makes from the same settings and the vendor key
    module = load_function(vendor)
    probe = probe_for(vendor, os.environ.get, key=VENDOR_KEYS[vendor])

    # When the probe's request reaches the function's sign-in route
    result = ask(module, vendor, smoke_query(probe))

    # Then the answer is one smoke accepts: the token on its way to the vendor's own host, as the vendor takes it
    assert judged(result, probe) is None, (result.status, result.header("Location"))
    # And the HEAD smoke sends mints nothing
    assert smoke.head_problem(ask(module, vendor, smoke_query(probe), method="HEAD")) is None


@pytest.mark.parametrize("vendor", VENDORS)
def test_an_answer_sent_back_to_the_bridge_or_to_another_host_fails_each_probe(vendor: str) -> None:
    probe = probe_for(vendor, os.environ.get, key=VENDOR_KEYS[vendor])
    elsewhere = f"https://evil.example{probe.path or '/'}?token={TOKEN}&jwt={TOKEN}"
    if probe.form:
        page = f'<form method="post" action="{elsewhere}"><input name="jwt" value="{TOKEN}"></form><script></script>'
        result = answer(200, {"Content-Type": "text/html"}, page.encode())
    else:
        result = redirect(elsewhere)
    problem = judged(result, probe)
    assert problem is not None
    assert "evil.example" in problem
    assert TOKEN not in problem


def test_zendesk_s_answer_is_a_page_that_posts_the_jwt_at_once_never_a_redirect() -> None:
    probe = probe_for("zendesk", os.environ.get, key=VENDOR_KEYS["zendesk"])
    assert (probe.form, probe.host, probe.path) == (True, ZD_ACCOUNT, "/access/jwt")
    return_to = probe.query["return_to"]
    assert urlsplit(return_to).hostname == ZD_ACCOUNT

    def page(fields: str, *, script: bool = True, action: str = f"https://{ZD_ACCOUNT}/access/jwt") -> Answer:
        html = f'<form method="post" action="{action}">{fields}<button>Continue</button></form>'
        html += "<script>HTMLFormElement.prototype.submit.call(document.forms[0]);</script>" if script else ""
        return answer(200, {"Content-Type": "text/html; charset=utf-8", **HSTS}, html.encode())

    jwt_field = f'<input type="hidden" name="jwt" value="{TOKEN}">'
    return_field = f'<input type="hidden" name="return_to" value="{return_to}">'
    assert judged(page(jwt_field + return_field), probe) is None
    where = f"https://{ZD_ACCOUNT}/access/jwt"
    assert judged(page(return_field), probe) == f"posts to {where} without a jwt field holding a token"
    other = '<input type="hidden" name="return_to" value="https://acme.zendesk.com/hc/">'
    assert judged(page(jwt_field + other), probe) == f"posts to {where} without the return_to Zendesk sent"
    assert judged(page(jwt_field + return_field + jwt_field), probe) == f"posts to {where} with a field twice"
    assert judged(page(jwt_field + return_field, script=False), probe) == (
        f"posts to {where} only when pressed: the page has no script that sends the form"
    )
    wrong_path = page(jwt_field + return_field, action=f"https://{ZD_ACCOUNT}/hc/")
    assert judged(wrong_path, probe) == f"posts to https://{ZD_ACCOUNT}/hc/, not to /access/jwt there"
    # A redirect, even to Zendesk with the token, is not the answer: the token would sit in a URL
    assert judged(redirect(f"{where}?jwt={TOKEN}"), probe) == "answered 302, not a page that posts to the vendor"
    plain = answer(200, {"Content-Type": "application/json"}, {"jwt": TOKEN})
    assert judged(plain, probe) == "answered 200 with application/json, not an HTML page"


def test_canny_s_answer_is_its_sso_endpoint_with_both_parameters_back() -> None:
    probe = probe_for("canny", os.environ.get, key=VENDOR_KEYS["canny"])
    assert (probe.host, probe.path) == ("canny.io", "/api/redirects/sso")
    assert probe.query["companyID"] == os.environ["CANNY_COMPANY_ID"]
    assert urlsplit(probe.query["redirect"]).hostname == os.environ["CANNY_REDIRECT_HOSTS"].split(",")[0]
    back = {"companyID": probe.query["companyID"], "redirect": probe.query["redirect"]}
    endpoint = "https://canny.io/api/redirects/sso"
    assert judged(redirect(f"{endpoint}?{urlencode({**back, 'ssoToken': TOKEN})}"), probe) is None
    assert judged(redirect(f"{endpoint}?{urlencode(back)}"), probe) == f"redirects to {endpoint} without an ssoToken"
    other = urlencode({**back, "companyID": "another", "ssoToken": TOKEN})
    assert judged(redirect(f"{endpoint}?{other}"), probe) == (
        f"redirects to {endpoint} without the companyID and redirect Canny sent"
    )


def test_discourse_s_request_is_signed_as_discourse_signs_it_and_its_answer_checked_with_the_same_secret() -> None:
    secret = VENDOR_KEYS["discourse"]
    probe = probe_for("discourse", os.environ.get, key=secret)
    community = urlsplit(os.environ["DISCOURSE_URL"]).hostname

    # The request: sig is the hex HMAC-SHA256 of the Base64 text (not of what it decodes to), under the secret
    sso, sig = probe.query["sso"], probe.query["sig"]
    assert sig == hmac.new(secret.encode(), sso.encode(), hashlib.sha256).hexdigest()
    payload = dict(parse_qsl(base64.b64decode(sso, validate=True).decode()))
    assert set(payload) == {"nonce", "return_sso_url"}
    assert re.fullmatch(r"[0-9a-f]{32}", payload["nonce"])
    assert payload["return_sso_url"] == f"https://{community}/session/sso_login"
    assert (probe.host, probe.path, probe.handoff) == (community, "/session/sso_login", False)

    # The answer: a payload for that nonce, signed with the same secret; not a JWT
    def answered(fields: Mapping[str, str], key: str = secret) -> Answer:
        encoded = base64.b64encode(urlencode(fields).encode()).decode()
        signature = hmac.new(key.encode(), encoded.encode(), hashlib.sha256).hexdigest()
        return redirect(f"{payload['return_sso_url']}?{urlencode({'sso': encoded, 'sig': signature})}")

    good = {"nonce": payload["nonce"], "email": SMOKE_EMAIL, "external_id": SMOKE_EMAIL}
    where = payload["return_sso_url"]
    assert judged(answered(good), probe) is None
    assert judged(answered(good, key="another-secret-0123456789abcdef"), probe) == (
        f"redirects to {where} with a sig that is not the HMAC of its sso under the key in the secret"
    )
    assert judged(answered({**good, "nonce": "0" * 32}), probe) == (
        f"redirects to {where} for another nonce than the one sent"
    )
    assert judged(answered({"nonce": payload["nonce"], "email": SMOKE_EMAIL}), probe) == (
        f"redirects to {where} without an email and an external_id"
    )
    assert judged(redirect(f"{where}?jwt={TOKEN}"), probe) == f"redirects to {where} without sso and sig"


def test_without_the_discourse_key_smoke_checks_the_hand_off_to_session_sso(
    jti_table: Any, link_tables: Any, load_function: Callable[..., Any]
) -> None:
    # Given no usable key (the template's placeholder): no request can be signed
    probe = probe_for("discourse", os.environ.get, key=None)
    assert (probe.query, probe.path, probe.handoff) == ({}, "/session/sso", True)

    # Then the bridge's answer is the hand-off to Discourse's /session/sso, the user in the hand-off cookie
    result = ask(load_function("discourse"), "discourse", smoke_query(probe))
    assert judged(result, probe) is None
    cookieless = Message()
    cookieless["Location"] = result.header("Location") or ""
    where = f"https://{urlsplit(os.environ['DISCOURSE_URL']).hostname}/session/sso"
    assert judged(Answer(302, cookieless, b""), probe) == (
        f"redirects to {where} without the hand-off cookie (sso_bridge_handoff_discourse, HttpOnly, Secure)"
    )
    assert judged(redirect(f"{where}?token={TOKEN}"), probe) == (
        f"redirects to {where} with a token in its address, where a hand-off keeps none"
    )


def test_freshworks_gets_its_implicit_request_and_its_answer_is_checked_with_the_public_key() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = VENDOR_KEYS["freshworks"]
    probe = probe_for("freshworks", os.environ.get, key=pem)
    sent = probe.query
    assert {name: sent[name] for name in ("response_type", "client_id", "scope")} == {
        "response_type": "id_token",
        "client_id": os.environ["FRESHWORKS_CLIENT_ID"],
        "scope": "openid email profile",
    }
    redirect_uri = urlsplit(sent["redirect_uri"])
    assert (redirect_uri.scheme, redirect_uri.hostname) == ("https", os.environ["FRESHWORKS_REDIRECT_HOSTS"])
    assert re.fullmatch(r"/sp/OIDC/[0-9]{1,32}/implicit", redirect_uri.path)
    assert (probe.host, probe.path) == (redirect_uri.hostname, redirect_uri.path)
    assert sent["state"] != sent["nonce"]

    def id_token(key: Any = pem, algorithm: str = "RS256", **claims: Any) -> str:
        now = int(time.time())
        body = {"sub": SMOKE_EMAIL, "email": SMOKE_EMAIL, "iat": now, "exp": now + 300, "nonce": sent["nonce"]}
        return jwt.encode({**body, **claims}, key, algorithm=algorithm)

    def answered(token: str, state: str = sent["state"]) -> Answer:
        return redirect(f"{sent['redirect_uri']}?{urlencode({'state': state, 'id_token': token})}")

    where = sent["redirect_uri"]
    assert judged(answered(id_token()), probe) is None
    assert (
        judged(answered(id_token(), state="another"), probe)
        == f"redirects to {where} without the state Freshworks sent"
    )
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert judged(answered(id_token(other_pem)), probe) == (
        f"redirects to {where} with an id_token the public half of the key in the secret does not verify"
    )
    assert judged(answered(id_token("k" * 32, "HS256")), probe) == f"redirects to {where} without an RS256 id_token"
    assert judged(answered(id_token(nonce="another")), probe) == (
        f"redirects to {where} with an id_token for another nonce than the one sent"
    )


def test_a_discourse_placeholder_names_its_own_seed_variable_locally(aws: Any) -> None:
    # `make run` seeds Discourse's secret from DISCOURSE_CONNECT_SECRET (its stand-in's seed_var), not *_JWT_SECRET
    aws.put_secret_value(SecretId=SECRET_IDS["discourse"], SecretString="REPLACE_ME with the connect secret")
    target = Target(
        where="the local stack at http://localhost:3000",
        local=True,
        session=boto3.session.Session(region_name="eu-west-1"),
        endpoint_url=None,  # moto in this process
        function_urls={"discourse": "http://localhost:3006/"},
        resources={"DISCOURSE_SECRET_ID": SECRET_IDS["discourse"]},
    )
    problem = smoke.key_problem(target, "discourse")
    assert problem is not None
    assert problem.startswith("the secret holds the template's placeholder; with KEY set to the connect secret, ")
    assert 'restart the stack with DISCOURSE_CONNECT_SECRET="$KEY" make run' in problem
