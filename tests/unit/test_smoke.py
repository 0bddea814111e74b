"""`make smoke`'s checks, offline: what each line says for the answers a broken or a working bridge gives.

The deployed target is a moto CloudFormation stack shaped like ours (tests/unit/test_target.py) with the vendor
secrets' outputs; HTTP answers come from a stand-in for ``ops.smoke.fetch`` (unit tests open no socket). The
same checks run against a real ``make run`` stack in tests/integration/test_smoke_local.py.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Mapping
from email.message import Message
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import jwt
import pytest

from local.template import load_template
from ops import smoke
from ops.smoke import Answer, Check, Probe, Unreachable, probe_for
from ops.target import _settings, resolve
from sso_bridge.jti_store import SMOKE_EMAIL
from sso_bridge.login_token import check_email
from tests.helpers import LOGIN_TOKEN_KEY, SECRET_IDS, VENDOR_KEYS, WORKSPACE
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
    probe = Probe("zendesk", "/zendesk/sso")
    assert problem_of(redirect(f"https://acme.zendesk.com/access/jwt?jwt={TOKEN}"), probe) is None
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


def test_a_vendor_added_to_the_template_is_probed_on_its_own_route() -> None:
    template = {
        "Resources": {
            "ZendeskFunction": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "CodeUri": "functions/zendesk",
                    "Handler": "app.lambda_handler",
                    "Events": {
                        "Head": {"Type": "HttpApi", "Properties": {"Method": "HEAD", "Path": "/zendesk/sso"}},
                        "Brand": {"Type": "HttpApi", "Properties": {"Method": "GET", "Path": "/zendesk/{brand}/sso"}},
                        "Sso": {"Type": "HttpApi", "Properties": {"Method": "GET", "Path": "/zendesk/sso"}},
                    },
                },
            }
        }
    }
    assert probe_for("zendesk", {}.get, template) == Probe("zendesk", "/zendesk/sso")


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
