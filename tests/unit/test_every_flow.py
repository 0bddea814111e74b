"""Promises every vendor flow keeps, checked on each of them with its own sample event.

The vendors are template.yaml's, each sent the request its portal sends (tests/vendor_requests.py): a vendor added
to the template is in every test here, or fails ``test_every_vendor_in_the_template_says_what_it_sends`` naming
what to add.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from types import ModuleType
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from tests.helpers import (
    EVENTS,
    PLATFORM_LOGIN_URL,
    SECRET_IDS,
    VENDOR_KEYS,
    LambdaContext,
    load_event,
    make_login_token,
)
from tests.vendor_requests import PORTALS, VENDORS, deployed, portal


@pytest.mark.parametrize("vendor", VENDORS)
def test_every_vendor_in_the_template_says_what_it_sends(vendor: str) -> None:
    # The tests' key and secret for it (tests/helpers.py), which the moto fixtures seed
    assert vendor in VENDOR_KEYS, f"{vendor}: add its key to VENDOR_KEYS in tests/helpers.py"
    assert vendor in SECRET_IDS, f"{vendor}: add its secret id to SECRET_IDS in tests/helpers.py"
    # Its request shape (tests/vendor_requests.py) and its sample events (events/, named after its sign-in route)
    signs_in = portal(vendor)  # a LookupError naming the vendor and what to add, when it has none
    assert signs_in.vendor == vendor
    assert signs_in.hosts, vendor
    for event in (deployed(vendor).event, deployed(vendor).url_event):
        assert (EVENTS / f"{event}.json").is_file(), f"{vendor}: add events/{event}.json"


def test_the_request_shapes_are_the_template_vendors() -> None:
    # No shape is left for a vendor the template no longer has.
    assert set(PORTALS) == set(VENDORS)


@pytest.fixture(params=VENDORS)
def flow(
    request: pytest.FixtureRequest, jti_table: Any, link_tables: Any, load_function: Callable[..., ModuleType]
) -> Any:
    name = request.param
    module = load_function(name, POWERTOOLS_LOGGER_LOG_EVENT="true", POWERTOOLS_TRACER_CAPTURE_RESPONSE="true")
    return name, module, deployed(name).event, portal(name).query()


def credentials(name: str, response: dict[str, Any]) -> list[str]:
    """The vendor's token(s) in an answer that signs someone in (a redirect's query or a posted form)."""
    location = response["headers"].get("Location", "")
    found = portal(name).found(location, response["body"])
    assert found, (name, response["statusCode"], location[:120])
    return list(found.values())


def invoke(module: ModuleType, event_name: str, query: str, **headers: str) -> Any:
    return module.lambda_handler(load_event(event_name, query=query, headers=headers), LambdaContext())


def with_token(query: str, token: str) -> str:
    return f"{query}&login_token={token}" if query else f"login_token={token}"


def test_event_logging_switched_on_still_never_logs_a_token(
    flow: Any, log_stream: Callable[[ModuleType], io.StringIO]
) -> None:
    # Given an operator who turned on Powertools' event logging to debug
    name, module, event_name, query = flow
    logs = log_stream(module)
    login_token = make_login_token(aud=name)

    # When a user signs in
    response = invoke(module, event_name, with_token(query, login_token))

    # Then neither the login token, the vendor token nor the vendor key is in the logs
    assert response["statusCode"] == portal(name).signed_in_status()
    vendor_tokens = credentials(name, response)
    out = logs.getvalue()
    assert '"outcome":"issued"' in out
    for secret in (login_token, *vendor_tokens, VENDOR_KEYS[name]):
        assert secret not in out


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_a_refusal_never_redirects_and_says_why_in_the_asked_format(flow: Any, accept: str) -> None:
    name, module, event_name, query = flow
    forged = make_login_token(aud=name, key="attacker-key-0123456789abcdef0123456789")
    response = invoke(module, event_name, with_token(query, forged), accept=accept)
    assert response["statusCode"] == 401
    assert "Location" not in response["headers"]
    assert response["headers"]["Cache-Control"] == "no-store"
    if accept == "application/json":
        assert json.loads(response["body"])["error"] == "invalid_login_token"
    else:
        assert response["headers"]["Content-Type"].startswith("text/html")
        assert "We could not sign you in" in response["body"]


def test_a_login_token_for_another_vendor_is_refused(flow: Any) -> None:
    name, module, event_name, query = flow
    other = next(vendor for vendor in VENDORS if vendor != name)
    response = invoke(module, event_name, with_token(query, make_login_token(aud=other)))
    assert response["statusCode"] == 403
    assert "Location" not in response["headers"]


def test_a_repeated_login_token_is_refused_rather_than_guessed(flow: Any) -> None:
    name, module, event_name, query = flow
    token = make_login_token(aud=name)
    response = invoke(module, event_name, with_token(with_token(query, token), token))
    assert response["statusCode"] == 400
    assert "Location" not in response["headers"]


@pytest.mark.parametrize(
    ("accept", "content_type"), [("application/json", "application/json"), ("text/html", "text/html")]
)
def test_an_unknown_path_on_a_function_url_is_a_404_in_the_asked_format(
    flow: Any, accept: str, content_type: str
) -> None:
    name, module, _, _ = flow
    event = load_event(deployed(name).url_event)
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/wp-admin/setup.php"
    event["headers"]["accept"] = accept
    response = module.lambda_handler(event, LambdaContext())
    assert response["statusCode"] == 404
    assert response["headers"]["Content-Type"].startswith(content_type)
    if accept == "application/json":
        assert json.loads(response["body"])["error"] == "not_found"


@pytest.mark.parametrize("switch", ["POWERTOOLS_DEV"])
def test_debug_switches_never_print_the_event_or_the_vendor_redirect(
    jti_table: Any,
    load_function: Callable[..., ModuleType],
    log_stream: Callable[[ModuleType], io.StringIO],
    capsys: pytest.CaptureFixture[str],
    switch: str,
) -> None:
    # Given an operator who turned on Powertools' debug output
    for name in VENDORS:
        event_name, query = deployed(name).event, portal(name).query()
        module = load_function(name, **{switch: "true", "POWERTOOLS_LOG_LEVEL": "DEBUG"})
        logs = log_stream(module)
        login_token = make_login_token(aud=name)
        forged = make_login_token(aud=name, key="attacker-key-0123456789abcdef0123456789")

        # When a user signs in, and someone tries a forged token
        signed_in = invoke(module, event_name, with_token(query, login_token))
        refused = invoke(module, event_name, with_token(query, forged))

        # Then the responses are the usual ones, and nothing printed or logged holds a token or the query
        assert signed_in["statusCode"] == portal(name).signed_in_status()
        assert refused["statusCode"] == 401
        printed = capsys.readouterr()
        output = printed.out + printed.err + logs.getvalue()
        location = signed_in["headers"].get("Location", "")
        secrets = [login_token, forged, *credentials(name, signed_in), "login_token="]
        if location:
            secrets += [location, urlsplit(location).query]
        if query:
            secrets.append(query)
        for secret in secrets:
            assert secret not in output, (name, secret[:20])
        for part in (login_token.rsplit(".", 1)[0], forged.rsplit(".", 1)[0]):
            assert part not in output


def test_every_kind_of_response_tells_browsers_to_keep_to_https(flow: Any) -> None:
    name, module, event_name, query = flow
    link = make_login_token(aud=name, use="link", jti="a-link-jti-0123456789abcdef", lifetime=3600)
    forged = make_login_token(aud=name, key="attacker-key-0123456789abcdef0123456789")
    responses = [
        invoke(module, event_name, with_token(query, make_login_token(aud=name))),  # to the vendor
        invoke(module, event_name, query),  # to sign in
        invoke(module, event_name, with_token(query, link)),  # the confirmation page
        invoke(module, event_name, with_token(query, forged)),  # an error page
        invoke(module, event_name, with_token(query, forged), accept="application/json"),  # JSON
    ]
    assert [r["statusCode"] for r in responses] == [portal(name).signed_in_status(), 302, 200, 401, 401]
    for response in responses:
        assert response["headers"]["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


PUBLIC_HOST = "sso.example.com"


def _signed_out_location(module: ModuleType, event: dict[str, Any]) -> str:
    response = module.lambda_handler(event, LambdaContext())
    assert response["statusCode"] == 302, response.get("body", "")[:200]
    return str(response["headers"]["Location"])


def _platform_sign_in(return_to: str) -> str:
    return f"{PLATFORM_LOGIN_URL}?return_to={quote(return_to, safe='')}"


@pytest.mark.parametrize("arrived_on", ["execute-api", "custom domain"])
@pytest.mark.parametrize("public_host", ["", PUBLIC_HOST], ids=["PUBLIC_HOST unset", "PUBLIC_HOST set"])
def test_a_signed_out_user_is_sent_back_to_the_public_host_and_a_function_url_keeps_its_own(
    jti_table: Any, load_function: Callable[..., ModuleType], public_host: str, arrived_on: str
) -> None:
    """Behind CloudFront the API sees its own execute-api host, and with a custom domain users may arrive on
    either: with PUBLIC_HOST the return URL is on it, https, whatever the event says. Email links stay on the
    function URL they were made for."""
    for name in VENDORS:
        event_name, query = deployed(name).event, portal(name).query()
        module = load_function(name, PUBLIC_HOST=public_host)
        event = load_event(event_name, query=query, headers={"x-forwarded-proto": "http"})
        if arrived_on == "custom domain":
            event["requestContext"]["domainName"] = event["headers"]["host"] = PUBLIC_HOST
        api_host = public_host or event["requestContext"]["domainName"]
        scheme = "https" if public_host else "http"  # unset: the local stack's header is honoured, as before
        return_to = f"{scheme}://{api_host}{event['rawPath']}" + (f"?{query}" if query else "")
        assert _signed_out_location(module, event) == _platform_sign_in(return_to), name

        link_event = load_event(deployed(name).url_event, query=query)
        link_host = link_event["requestContext"]["domainName"]
        return_to = f"https://{link_host}/" + (f"?{query}" if query else "")
        assert _signed_out_location(module, link_event) == _platform_sign_in(return_to), name
