"""The Zendesk help center flow as a user, Zendesk and an attacker meet it.

Zendesk sends the browser to the Remote login URL with ``return_to`` (and ``brand_id``, ``locale_id``,
``timestamp``); the bridge answers with a page whose form posts ``jwt`` and ``return_to`` to
``{account}/access/jwt`` at once. The token is checked here as Zendesk checks it, with node's ``jose`` (not PyJWT),
and the page as a browser reads it: one script, allowed by its hash, a button when scripts are off, the form going
nowhere but Zendesk. Zendesk's refusals come back to the Remote logout URL as ``kind=error&message=...``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import secrets
import time
from collections.abc import Callable
from html.parser import HTMLParser
from types import ModuleType
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import boto3
import jwt
import pytest
from botocore.stub import Stubber

from local.server import Reply, Request
from local.vendors import zendesk as standin
from sso_bridge.errors import ConfigurationError
from sso_bridge.jti_store import JtiStore
from sso_bridge.responses import AUTO_SUBMIT_SCRIPT, post_form_page
from tests.helpers import (
    JTI_TABLE_NAME,
    LOGIN_TOKEN_KEY,
    PLATFORM_LOGIN_URL,
    SECRET_IDS,
    SPENT_LINKS_TABLE_NAME,
    VENDOR_KEYS,
    ZENDESK_ACCOUNT_URL,
    ZENDESK_HOSTS,
    LambdaContext,
    LinkPage,
    load_event,
    make_login_token,
    pressed,
)
from tests.node_jose import JoseRefused, verify_with_jose

ZD_KEY = VENDOR_KEYS["zendesk"]
ACCOUNT_HOST = urlsplit(ZENDESK_ACCOUNT_URL).netloc  # acme.zendesk.com
MAPPED_HOST = ZENDESK_HOSTS  # help.example.org, a host-mapped help center
ACCESS_JWT = f"{ZENDESK_ACCOUNT_URL}/access/jwt"
ZENDESK_WINDOW = 180  # Zendesk refuses an iat more than 3 minutes off
SAMPLE = load_event("zendesk-login-httpapi")
RETURN_TO = f"https://{ACCOUNT_HOST}/hc/en-us/requests/4242"  # the sample's return_to, decoded
API_HOST = "abc123.execute-api.eu-west-1.amazonaws.com"
EMAIL = "jane.doe+vip@example.com"
IAT_OFF = "Invalid iat parameter. The supplied iat value is more than 3 minutes off, check your server clock."


@pytest.fixture
def zendesk(jti_table: Any, link_tables: Any, load_function: Callable[..., ModuleType]) -> ModuleType:
    return load_function("zendesk")


def login_token(email: str = EMAIL, **claims: Any) -> str:
    return make_login_token(email, aud="zendesk", **claims)


def request(
    query: str | None = None, *, event: str = "zendesk-login-httpapi", method: str = "GET", **headers: str
) -> dict[str, Any]:
    payload = load_event(event, query=query, headers={name.replace("_", "-"): v for name, v in headers.items()})
    payload["requestContext"]["http"]["method"] = method
    return payload


def invoke(module: ModuleType, query: str | None = None, **kwargs: Any) -> dict[str, Any]:
    response: dict[str, Any] = module.lambda_handler(request(query, **kwargs), LambdaContext())
    return response


def with_token(token: str, query: str = SAMPLE["rawQueryString"]) -> str:
    return f"{query}&login_token={token}" if query else f"login_token={token}"


def records(table: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = table.scan(TableName=JTI_TABLE_NAME)["Items"]
    return items


# --- the page, as a browser reads it ------------------------------------------------------------------------


class Page(HTMLParser):
    """The parts of a page a browser acts on: forms and their fields, scripts, styles, links, event handlers."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, Any]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.styles: list[str] = []
        self.links: list[tuple[str, str]] = []
        self.handlers: list[str] = []
        self.quotes: list[str] = []
        self._in: str | None = None
        self._text = ""
        self._attrs: dict[str, str | None] = {}
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.handlers += [name for name in attributes if name.startswith("on")]
        if tag == "form":
            self.forms.append({"attrs": attributes, "fields": [], "buttons": []})
        elif tag == "input" and self.forms:
            self.forms[-1]["fields"].append(attributes)
        elif tag in ("script", "style", "a", "button", "blockquote"):
            self._in, self._text, self._attrs = tag, "", attributes

    def handle_data(self, data: str) -> None:
        if self._in:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag != self._in:
            return
        if tag == "script":
            self.scripts.append((self._attrs, self._text))
        elif tag == "style":
            self.styles.append(self._text)
        elif tag == "a":
            self.links.append((str(self._attrs.get("href")), self._text))
        elif tag == "button" and self.forms:
            self.forms[-1]["buttons"].append((self._attrs, self._text))
        elif tag == "blockquote":
            self.quotes.append(self._text)
        self._in = None

    @property
    def form(self) -> dict[str, Any]:
        [form] = self.forms
        return form

    @property
    def fields(self) -> dict[str, str]:
        """The form's fields as it posts them (all hidden)."""
        fields = self.form["fields"]
        assert all(field["type"] == "hidden" for field in fields)
        return {str(field["name"]): str(field["value"]) for field in fields}


def policy(response: dict[str, Any]) -> dict[str, list[str]]:
    header = response["headers"]["Content-Security-Policy"]
    directives = [part.strip().split() for part in header.split(";")]
    return {name: values for name, *values in directives}


def sha256_source(text: str) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"


def posted(response: dict[str, Any]) -> dict[str, str]:
    """The fields the page's form posts to Zendesk's /access/jwt (checked: a 200 page, the form going there)."""
    assert response["statusCode"] == 200, (response["statusCode"], response["body"][:300])
    page = Page(response["body"])
    assert page.form["attrs"]["method"] == "post"
    assert page.form["attrs"]["action"] == ACCESS_JWT
    return page.fields


def zendesk_claims(token: str, *, key: str = ZD_KEY) -> dict[str, Any]:
    """As Zendesk reads a token, with node's jose: HS256 only, typ JWT, its four claims, iat within 3 minutes."""
    header, claims = verify_with_jose(token, key, algorithms=["HS256"])
    assert header == {"alg": "HS256", "typ": "JWT"}
    assert {"iat", "jti", "email", "name"} <= set(claims)
    assert abs(time.time() - claims["iat"]) <= ZENDESK_WINDOW
    return claims


# --- signed in: the page that posts the token ----------------------------------------------------------------


def test_a_signed_in_user_gets_a_page_that_posts_the_token_to_zendesk(zendesk: ModuleType, jti_table: Any) -> None:
    # Given Zendesk's request (events/) and a login token with the profile the platform knows
    profile = {"external_id": "user-4711", "organization": "Acme Corp", "tags": ["vip", "beta"], "locale_id": 8}
    token = login_token(name="Jane Doe", jti="login-42", **profile)

    # When the browser arrives with it
    response = invoke(zendesk, with_token(token))

    # Then the page's form posts the token and Zendesk's return_to to /access/jwt, and nothing else
    fields = posted(response)
    assert set(fields) == {"jwt", "return_to"}
    assert fields["return_to"] == RETURN_TO
    # And Zendesk takes the token: its claims and the profile's, tags as Zendesk's comma list, never a role
    claims = zendesk_claims(fields["jwt"])
    assert set(claims) == {"iat", "jti", "email", "name", "external_id", "organization", "tags", "locale_id"}
    assert (claims["email"], claims["name"]) == (EMAIL, "Jane Doe")
    assert (claims["external_id"], claims["organization"], claims["tags"], claims["locale_id"]) == (
        "user-4711",
        "Acme Corp",
        "vip,beta",
        8,
    )
    # And the page is never stored, sends no Referer, and is HTML
    headers = response["headers"]
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Content-Type"].startswith("text/html")
    assert "Location" not in headers
    # And the jti is on record for Zendesk, with Zendesk's window as its expiry
    [item] = records(jti_table)
    assert item["jti"] == {"S": claims["jti"]}
    assert item["vendor"] == {"S": "zendesk"}
    assert item["login_jti"] == {"S": "login-42"}
    assert int(item["expires_at"]["N"]) == claims["iat"] + ZENDESK_WINDOW


def test_the_token_does_not_verify_with_another_key(zendesk: ModuleType) -> None:
    token = posted(invoke(zendesk, with_token(login_token())))["jwt"]
    with pytest.raises(JoseRefused):
        verify_with_jose(token, LOGIN_TOKEN_KEY, algorithms=["HS256"])
    with pytest.raises(JoseRefused):
        verify_with_jose(token, ZD_KEY, algorithms=["HS512"])


@pytest.mark.parametrize(
    ("claims", "name"),
    [
        ({}, "jane.doe+vip"),
        ({"name": "   "}, "jane.doe+vip"),
        # Whatever else the platform puts in a login token, nothing that makes an agent reaches Zendesk
        (
            {"name": "Jane", "role": "admin", "custom_role_id": 42, "restriction": "none", "user_fields": {"a": 1}},
            "Jane",
        ),
    ],
)
def test_without_a_profile_the_token_has_zendesks_four_claims_only(
    zendesk: ModuleType, claims: dict[str, Any], name: str
) -> None:
    token = posted(invoke(zendesk, with_token(login_token(**claims))))["jwt"]
    signed = zendesk_claims(token)
    assert set(signed) == {"iat", "jti", "email", "name"}
    assert signed["name"] == name


def test_every_sign_in_gets_its_own_jti(zendesk: ModuleType, jti_table: Any) -> None:
    token = login_token()
    jtis = [zendesk_claims(posted(invoke(zendesk, with_token(token)))["jwt"])["jti"] for _ in range(3)]
    assert len(set(jtis)) == 3
    assert {item["jti"]["S"] for item in records(jti_table)} == set(jtis)


def test_the_pages_one_script_is_allowed_by_its_hash_and_the_form_posts_only_to_zendesk(zendesk: ModuleType) -> None:
    response = invoke(zendesk, with_token(login_token()))
    page = Page(response["body"])
    csp = policy(response)
    # One inline script, no src, no event handler attributes; the policy allows exactly its hash
    [(attributes, script)] = page.scripts
    assert attributes == {}
    assert script == AUTO_SUBMIT_SCRIPT
    assert csp["script-src"] == [sha256_source(script)]
    assert page.handlers == []
    assert "unsafe" not in response["headers"]["Content-Security-Policy"]
    assert csp["default-src"] == ["'none'"]
    # The stylesheet is still allowed by its own hash
    [style] = page.styles
    assert csp["style-src"] == [sha256_source(style)]
    # The form may post to Zendesk and be redirected on to the help center's hosts, nowhere else
    assert sorted(csp["form-action"]) == sorted([ZENDESK_ACCOUNT_URL, f"https://{MAPPED_HOST}"])
    # With scripts off, a visible button posts the same form
    [(button, label)] = page.form["buttons"]
    assert button["type"] == "submit"
    assert "hidden" not in button
    assert label == "Continue"
    # The script runs after the form exists
    body = response["body"]
    assert body.index("</form>") < body.index("<script>")


def test_the_token_is_only_in_the_forms_field(zendesk: ModuleType, log_stream: Callable[..., io.StringIO]) -> None:
    logs = log_stream(zendesk)
    login = login_token(jti="login-7")
    response = invoke(zendesk, with_token(login))
    token = posted(response)["jwt"]
    assert response["body"].count(token) == 1
    assert f'name="jwt" value="{token}"' in response["body"]
    assert all(token not in value for value in response["headers"].values())
    out = logs.getvalue()
    for secret in (token, login, ZD_KEY, LOGIN_TOKEN_KEY):
        assert secret not in out
    [line] = [json.loads(line) for line in out.splitlines()]
    assert (line["outcome"], line["vendor"], line["login_jti"]) == ("issued", "zendesk", "login-7")
    assert line["jti"] == zendesk_claims(token)["jti"]


def test_the_page_speaks_the_readers_language_and_wears_the_brand(
    jti_table: Any, load_function: Callable[..., ModuleType]
) -> None:
    module = load_function("zendesk", BRAND_NAME="Acme Widgets")
    response = invoke(module, with_token(login_token()), accept_language="de-CH,de;q=0.9")
    body = response["body"]
    assert '<html lang="de">' in body
    assert "Weiter zu dem Hilfecenter" in body
    assert "Acme Widgets" in body
    assert Page(body).form["buttons"][0][1] == "Weiter"
    assert response["headers"]["Content-Language"] == "de"


def test_the_referrer_policy_is_the_flows_setting(jti_table: Any, load_function: Callable[..., ModuleType]) -> None:
    # Should Zendesk ever want to see where the POST came from, the operator's REFERRER_POLICY applies here too
    module = load_function("zendesk", REFERRER_POLICY="origin")
    response = invoke(module, with_token(login_token()))
    assert response["headers"]["Referrer-Policy"] == "origin"


def test_the_function_urls_root_serves_the_login(zendesk: ModuleType) -> None:
    response = invoke(zendesk, with_token(login_token()), event="zendesk-login-function-url")
    assert zendesk_claims(posted(response)["jwt"])["email"] == EMAIL


def test_the_layers_form_page_escapes_every_field_and_takes_only_plain_origins() -> None:
    # The builder a future vendor reuses: a hostile value stays a value, a hostile origin never reaches the policy
    response = post_form_page(
        "https://vendor.example.com/sso?x=1&y=2",
        {"token": '"><script>alert(1)</script>', "next": "a&b"},
        portal_name="the portal",
        request_id="req-1",
    )
    page = Page(response.body)
    assert page.form["attrs"]["action"] == "https://vendor.example.com/sso?x=1&y=2"
    assert page.fields == {"token": '"><script>alert(1)</script>', "next": "a&b"}
    assert [text for _, text in page.scripts] == [AUTO_SUBMIT_SCRIPT]
    assert "form-action https://vendor.example.com;" in response.headers["Content-Security-Policy"] + ";"
    for origin in ("https://x.example.com; script-src *", "https://x.example.com/path", "javascript:alert(1)"):
        with pytest.raises(ValueError, match="form-action"):
            post_form_page(
                "https://vendor.example.com/sso", {}, portal_name="p", request_id="r", redirect_origins=[origin]
            )


# --- return_to ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("return_to", "passed_back"),
    [
        (RETURN_TO, RETURN_TO),
        (f"https://{MAPPED_HOST}/hc/de/articles/1?q=a%20b#top", None),
        (f"HTTPS://{ACCOUNT_HOST.upper()}/hc/en-us", f"https://{ACCOUNT_HOST}/hc/en-us"),
        (f"https://{ACCOUNT_HOST}:443/hc/", f"https://{ACCOUNT_HOST}/hc/"),
        (f"https://{ACCOUNT_HOST}", f"https://{ACCOUNT_HOST}/"),
    ],
)
def test_a_return_to_on_the_help_centers_hosts_is_passed_back(
    zendesk: ModuleType, return_to: str, passed_back: str | None
) -> None:
    query = urlencode({"return_to": return_to, "brand_id": "360001234567"})
    fields = posted(invoke(zendesk, with_token(login_token(), query)))
    assert fields == {"jwt": fields["jwt"], "return_to": passed_back or return_to}


def test_without_return_to_zendesk_picks_the_page(zendesk: ModuleType) -> None:
    # A link from the platform's own menu: no return_to, so none is sent and Zendesk shows its help center
    fields = posted(invoke(zendesk, with_token(login_token(), "")))
    assert set(fields) == {"jwt"}


A = ACCOUNT_HOST
HOSTILE_RETURN_TO = {
    "other host": ["https://evil.example.net/", "https://zendesk.com/", "https://other.zendesk.com/hc/"],
    "suffix trick": [f"https://{A}.evil.net/", f"https://{A}./hc/", f"https://{A}%2eevil.net/"],
    "prefix trick": [f"https://evil{A}/", f"https://x.{A}/", f"https://evil.net/{A}", f"https://evil.net?{A}"],
    "userinfo": [f"https://{A}@evil.net/", f"https://user:pw@{A}/", f"https://evil.net%40{A}/"],
    "backslash": [f"https://evil.net\\{A}/", f"https://evil.net\\@{A}/", "https:\\\\evil.net/"],
    "scheme-relative": ["//evil.net/", "///evil.net/", "/\\evil.net/", f"//{A}/hc/"],
    "relative": ["/hc/en-us", "hc", "?x=1"],
    "other schemes": [
        f"http://{A}/hc/",
        f"javascript:alert(1)//https://{A}/",
        "data:text/html,<script>alert(1)</script>",
        f"https:{A}/hc/",
        f" https://{A}/hc/",
    ],
    "encoded dots": ["https://acme%2ezendesk%2ecom/", "https://acme%252ezendesk.com/", f"https://evil.net%2f@{A}/"],
    "unicode dots and look-alikes": [
        "https://acme\u3002zendesk\u3002com/",
        "https://acme\uff0ezendesk\uff0ecom/",
        "https://\u0430cme.zendesk.com/",
        f"https://{A}\u200b/",
    ],
    "control characters": [f"https://{A}/hc\r\nLocation: https://evil.net/", f"https://{A}/\x00", f"https://{A}/\n"],
    "ports": [f"https://{A}:8443/", f"https://{A}:0/", f"https://{A}:99999/"],
    "ip literals": ["https://127.0.0.1/", "https://[::1]/", "https://169.254.169.254/"],
    "path tricks": [f"https://{A}//evil.net/", f"https://{A}/hc<script>"],
    "too long": [f"https://{A}/hc/?q=" + "a" * 2100],
}


@pytest.mark.parametrize(
    "return_to",
    [pytest.param(url, id=f"{kind}: {url[:50]!r}") for kind, urls in HOSTILE_RETURN_TO.items() for url in urls],
)
def test_a_hostile_return_to_is_refused_before_sign_in_and_signs_nothing(
    zendesk: ModuleType, jti_table: Any, return_to: str
) -> None:
    for token in (None, login_token()):
        query = f"return_to={quote(return_to, safe='')}&brand_id=360001234567"
        response = invoke(zendesk, with_token(token, query) if token else query)
        assert response["statusCode"] in (400, 414)
        assert "Location" not in response["headers"]  # not even to the platform's sign-in
        assert "<form" not in response["body"]
        assert "evil" not in response["body"]
        assert records(jti_table) == []


def test_a_return_to_given_twice_is_refused(zendesk: ModuleType) -> None:
    query = f"return_to={quote(RETURN_TO, safe='')}&return_to=https%3A%2F%2Fevil.example.net%2F"
    assert invoke(zendesk, with_token(login_token(), query))["statusCode"] == 400


# --- the round trips: the platform, OpenID Connect, email links ----------------------------------------------


def test_the_platform_round_trip_keeps_zendesks_parameters(zendesk: ModuleType, jti_table: Any) -> None:
    # Given Zendesk's request and no login token: off to the platform, with everything Zendesk sent to come back to
    first = invoke(zendesk)
    assert first["statusCode"] == 302
    location = urlsplit(first["headers"]["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == PLATFORM_LOGIN_URL
    [return_to] = parse_qs(location.query)["return_to"]
    assert return_to == f"https://{API_HOST}/zendesk/login?{SAMPLE['rawQueryString']}"
    assert records(jti_table) == []

    # When the platform sends the browser back with a login token
    back = urlsplit(return_to)
    second = invoke(zendesk, with_token(login_token("amy@example.com"), back.query))

    # Then the page posts Amy's token and Zendesk's return_to
    fields = posted(second)
    assert fields["return_to"] == RETURN_TO
    assert zendesk_claims(fields["jwt"])["email"] == "amy@example.com"


def test_with_openid_connect_sign_in_starts_at_the_provider_and_comes_back_with_zendesks_parameters(
    aws: Any, jti_table: Any, link_tables: Any, load_function: Callable[..., ModuleType]
) -> None:
    import urllib.request

    from tests.oidc_in_process import ISSUER, InProcessProvider

    provider = InProcessProvider()
    aws.create_secret(Name="sso-bridge/oidc-client", SecretString=provider.client_secret)
    with mock.patch.object(urllib.request, "build_opener"):
        module = load_function(
            "zendesk",
            OIDC_ISSUER=provider.issuer,
            OIDC_CLIENT_ID=provider.client_id,
            OIDC_CLIENT_SECRET_ID="sso-bridge/oidc-client",
            OIDC_PACKAGES_PATH="/nonexistent/oidc-packages",
        )
    module.flow.oidc.provider._opener = provider.opener()
    response = invoke(module)
    assert response["statusCode"] == 302
    assert response["headers"]["Location"].startswith(f"{ISSUER}/authorize?response_type=code&")
    [cookie] = response["cookies"]
    state = jwt.decode(cookie.split(";", 1)[0].partition("=")[2], options={"verify_signature": False})
    assert state["rt"] == f"https://{API_HOST}/zendesk/login?{SAMPLE['rawQueryString']}"


def link_token(**claims: Any) -> str:
    defaults: dict[str, Any] = {"use": "link", "lifetime": 7 * 86400, "jti": secrets.token_hex(16)}
    return login_token(**{**defaults, **claims})


def spent(link_tables: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = link_tables.scan(TableName=SPENT_LINKS_TABLE_NAME)["Items"]
    return items


def press(module: ModuleType, link: str, event: str = "zendesk-login-function-url") -> dict[str, Any]:
    """The reader opens the link (GET: the page) and presses Continue, as Chromium sends it."""
    page = LinkPage.from_response(invoke(module, f"login_token={link}", event=event))
    response: dict[str, Any] = module.lambda_handler(
        pressed(request(f"login_token={link}", event=event), page), LambdaContext()
    )
    return response


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_an_email_link_opened_shows_the_confirmation_and_signs_nothing(
    zendesk: ModuleType, jti_table: Any, link_tables: Any, method: str
) -> None:
    response = invoke(zendesk, f"login_token={link_token()}", event="zendesk-login-function-url", method=method)
    assert response["statusCode"] == 200
    if method == "GET":
        assert "Continue to the help center" in response["body"]
        assert 'name="jwt"' not in response["body"]
    assert records(jti_table) == []
    assert spent(link_tables) == []


def test_an_email_links_button_spends_it_and_posts_the_token_to_zendesk(
    zendesk: ModuleType, jti_table: Any, link_tables: Any
) -> None:
    link = link_token(name="Jane Doe")
    fields = posted(press(zendesk, link))
    # No return_to in a link: Zendesk picks the page
    assert set(fields) == {"jwt"}
    assert zendesk_claims(fields["jwt"])["name"] == "Jane Doe"
    assert len(spent(link_tables)) == 1
    assert len(records(jti_table)) == 1


def test_an_email_links_destination_becomes_return_to(zendesk: ModuleType) -> None:
    destination = f"https://{MAPPED_HOST}/hc/en-us/articles/360001"
    fields = posted(press(zendesk, link_token(redirect_to=destination)))
    assert fields["return_to"] == destination


def test_an_email_link_to_somewhere_else_is_refused(zendesk: ModuleType, jti_table: Any) -> None:
    response = press(zendesk, link_token(redirect_to="https://evil.example.net/"))
    assert response["statusCode"] == 400
    assert '<form method="post" action' not in response["body"]
    assert records(jti_table) == []


def test_a_spent_link_goes_through_sign_in_and_back_to_its_destination(zendesk: ModuleType) -> None:
    destination = f"https://{ACCOUNT_HOST}/hc/en-us/requests/7"
    link = link_token(redirect_to=destination)
    posted(press(zendesk, link))
    again = invoke(zendesk, f"login_token={link}", event="zendesk-login-function-url")
    assert again["statusCode"] == 302
    [return_to] = parse_qs(urlsplit(again["headers"]["Location"]).query)["return_to"]
    assert parse_qs(urlsplit(return_to).query)["return_to"] == [destination]


# --- outages: a 503, no token ---------------------------------------------------------------------------------


def assert_unavailable(response: dict[str, Any]) -> None:
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"] == "60"
    assert "Location" not in response["headers"]
    assert 'name="jwt"' not in response["body"]


def test_a_secrets_manager_outage_is_a_503_and_records_nothing(zendesk: ModuleType, jti_table: Any, aws: Any) -> None:
    aws.delete_secret(SecretId=SECRET_IDS["zendesk"], ForceDeleteWithoutRecovery=True)
    assert_unavailable(invoke(zendesk, with_token(login_token())))
    assert records(jti_table) == []


def test_a_placeholder_key_is_never_used_to_sign(zendesk: ModuleType, aws: Any) -> None:
    aws.put_secret_value(SecretId=SECRET_IDS["zendesk"], SecretString="REPLACE_ME with the key")
    assert_unavailable(invoke(zendesk, with_token(login_token())))


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException", "AccessDenied"])
def test_a_jti_table_outage_is_a_503_and_no_token(
    zendesk: ModuleType, code: str, log_stream: Callable[..., io.StringIO]
) -> None:
    logs = log_stream(zendesk)
    client = boto3.client("dynamodb", region_name="eu-west-1")
    with Stubber(client) as stubber:
        stubber.add_client_error("put_item", service_error_code=code, http_status_code=400)
        zendesk.jti_store = JtiStore(JTI_TABLE_NAME, retention_days=90, client=client)
        assert_unavailable(invoke(zendesk, with_token(login_token())))
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert [(line["outcome"], line["reason"]) for line in lines] == [("refused", "jti_store_unavailable")]


def test_a_missing_jti_table_is_a_503_in_json_when_asked(zendesk: ModuleType, jti_table: Any) -> None:
    jti_table.delete_table(TableName=JTI_TABLE_NAME)
    response = invoke(zendesk, with_token(login_token()), accept="application/json")
    assert_unavailable(response)
    assert json.loads(response["body"])["reason"] == "jti_store_unavailable"


# --- configuration --------------------------------------------------------------------------------------------


def test_a_host_mapped_help_center_is_an_account_url(jti_table: Any, load_function: Callable[..., ModuleType]) -> None:
    module = load_function("zendesk", ZENDESK_ACCOUNT_URL="https://Help.Example.com/", ZENDESK_HOSTS="")
    response = invoke(module, with_token(login_token(), "return_to=https%3A%2F%2Fhelp.example.com%2Fhc%2F"))
    assert Page(response["body"]).form["attrs"]["action"] == "https://help.example.com/access/jwt"
    assert policy(response)["form-action"] == ["https://help.example.com"]


@pytest.mark.parametrize(
    "value",
    [
        "acme.zendesk.com",
        "http://acme.zendesk.com",
        "https://acme.zendesk.com/hc/en-us",
        "https://acme.zendesk.com/access/jwt",
        "https://acme.zendesk.com?x=1",
        "https://acme.zendesk.com#x",
        "https://user@acme.zendesk.com",
        "https://acme.zendesk.com:8443",
        "https://acme.zendesk.com\\@evil.example.net",
        "javascript:alert(1)",
    ],
)
def test_the_account_url_must_be_a_plain_https_origin(load_function: Callable[..., ModuleType], value: str) -> None:
    with pytest.raises(ConfigurationError, match="ZENDESK_ACCOUNT_URL"):
        load_function("zendesk", ZENDESK_ACCOUNT_URL=value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ZENDESK_HOSTS", "https://help.example.org"),
        ("ZENDESK_HOSTS", "*.zendesk.com"),
        ("ZENDESK_SECRET_ID", SECRET_IDS["login"]),
        ("JTI_RETENTION_DAYS", "0"),
        ("PLATFORM_LOGOUT_URL", "http://platform.example.com/logout"),
    ],
)
def test_bad_configuration_names_the_variable(
    load_function: Callable[..., ModuleType], variable: str, value: str
) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        load_function("zendesk", **{variable: value})


@pytest.mark.parametrize("variable", ["ZENDESK_ACCOUNT_URL", "ZENDESK_SECRET_ID", "JTI_TABLE_NAME"])
def test_required_configuration_stops_the_cold_start(
    load_function: Callable[..., ModuleType], monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.delenv(variable)
    with pytest.raises(ConfigurationError, match=f"{variable} is required"):
        load_function("zendesk")


# --- the Remote logout URL: signing out, and Zendesk's refusals -----------------------------------------------


def logout(module: ModuleType, query: str | None = None, **headers: str) -> dict[str, Any]:
    return invoke(module, query, event="zendesk-logout-httpapi", **headers)


def test_logout_goes_to_the_platforms_logout(jti_table: Any, load_function: Callable[..., ModuleType]) -> None:
    module = load_function("zendesk", PLATFORM_LOGOUT_URL="https://platform.example.com/logout")
    response = logout(module)
    assert response["statusCode"] == 302
    assert response["headers"]["Location"] == "https://platform.example.com/logout"


def test_logout_without_a_logout_url_shows_the_signed_out_page(zendesk: ModuleType) -> None:
    response = logout(zendesk)
    assert response["statusCode"] == 200
    assert "You are signed out" in response["body"]
    assert (f"{ZENDESK_ACCOUNT_URL}/hc/", "Back to the help center") in Page(response["body"]).links


def error_query(message: str) -> str:
    # As Zendesk writes it (message first, spaces as '+')
    return f"message={quote(message, safe='').replace('%20', '+')}&kind=error"


def test_zendesks_refusal_is_a_page_quoting_its_words_with_ways_forward(
    zendesk: ModuleType, log_stream: Callable[..., io.StringIO]
) -> None:
    logs = log_stream(zendesk)
    response = logout(zendesk, error_query(IAT_OFF))
    assert response["statusCode"] == 400
    assert response["headers"]["Content-Type"].startswith("text/html")
    page = Page(response["body"])
    assert "Sign-in did not complete" in response["body"]
    assert page.quotes == [IAT_OFF]
    again = f"https://{API_HOST}/zendesk/login?return_to={quote(f'{ZENDESK_ACCOUNT_URL}/hc/', safe='')}"
    assert page.links[:3] == [
        (again, "Sign in again"),
        ("https://platform.example.com/", "Back to the home page"),
        (f"{ZENDESK_ACCOUNT_URL}/hc/", "Back to the help center"),
    ]
    assert page.scripts == []
    # Logged once, by cause; Zendesk's words never (they may name the user)
    [line] = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert (line["outcome"], line["reason"], line["cause"]) == ("refused", "zendesk_sign_in_error", "clock")
    assert "minutes" not in logs.getvalue()


@pytest.mark.parametrize(
    ("message", "cause"),
    [
        ("Users with the email address jane.doe+vip@example.com are not allowed to sign up", "sign_up_blocked"),
        ("JWT signature invalid. The signature cannot be verified, check that your tokens match.", "signature"),
        ("The JWT has already been used", "replay"),
        ("Something else", "other"),
    ],
)
def test_zendesks_words_are_shown_and_never_logged(
    zendesk: ModuleType, log_stream: Callable[..., io.StringIO], message: str, cause: str
) -> None:
    logs = log_stream(zendesk)
    response = logout(zendesk, error_query(message))
    assert Page(response["body"]).quotes == [message]
    [line] = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert line["cause"] == cause
    assert message not in logs.getvalue()
    assert "jane.doe" not in logs.getvalue()


@pytest.mark.parametrize(
    "message",
    [
        "Account locked\u202e.moc.live",  # bidi override
        "Line one\nLocation: https://evil.example.net/",
        "Zero\u200bwidth",
        "Call https://evil.example.net/help now",
        "Visit www.evil.example.net to unlock",
        "",
    ],
)
def test_words_unfit_to_show_are_not_shown(zendesk: ModuleType, message: str) -> None:
    response = logout(zendesk, error_query(message))
    assert response["statusCode"] == 400
    assert Page(response["body"]).quotes == []
    assert "evil" not in response["body"]
    assert "Sign-in did not complete" in response["body"]


def test_markup_in_zendesks_words_is_text(zendesk: ModuleType) -> None:
    message = '<script>alert(1)</script><a href="x">click</a>'
    response = logout(zendesk, error_query(message))
    assert "<script" not in response["body"]
    assert Page(response["body"]).quotes == [message]


def test_long_words_are_cut(zendesk: ModuleType) -> None:
    response = logout(zendesk, error_query("x" * 1000))
    [shown] = Page(response["body"]).quotes
    assert shown == "x" * 299 + "…"


def test_the_refusal_page_speaks_the_readers_language(zendesk: ModuleType) -> None:
    response = logout(zendesk, error_query(IAT_OFF), accept_language="fr")
    body = response["body"]
    assert "La connexion n\u2019a pas abouti" in body
    assert "Motif indiqué" in body
    assert [label for _, label in Page(body).links][:3] == [
        "Se reconnecter",
        "Retour à la page d\u2019accueil",
        "Retourner sur le centre d\u2019aide",
    ]


# --- the stand-in: Zendesk's side, locally ---------------------------------------------------------------------

STANDIN_LOGIN = "https://sso.example.com/zendesk/login"
STANDIN_LOGOUT = "https://sso.example.com/zendesk/logout"


def standin_app(logout_url: str | None = None) -> Any:
    return standin.zendesk(
        account_host=ACCOUNT_HOST, key=ZD_KEY, remote_login_url=STANDIN_LOGIN, remote_logout_url=logout_url
    )


def call(app: Any, target: str, method: str = "GET", body: bytes = b"", content_type: str | None = None) -> Reply:
    headers = [("Host", "127.0.0.1:8443")]
    if content_type:
        headers.append(("Content-Type", content_type))
    reply: Reply = app(Request(method, target, headers, body, "127.0.0.1", "HTTP/1.1", 8443))
    return reply


def post_form(app: Any, fields: dict[str, str]) -> Reply:
    return call(app, "/access/jwt", "POST", urlencode(fields).encode(), "application/x-www-form-urlencoded")


def hand_made(claims: dict[str, Any], *, key: str = ZD_KEY, headers: dict[str, Any] | None = None) -> str:
    return jwt.encode(claims, key, algorithm="HS256", headers=headers)


def fresh(**overrides: Any) -> dict[str, Any]:
    claims = {"iat": int(time.time()), "jti": secrets.token_hex(16), "email": EMAIL, "name": "Jane Doe"}
    return {**claims, **overrides}


def test_the_standin_takes_what_the_bridge_posts(zendesk: ModuleType) -> None:
    # The page's form, posted as a browser posts it
    fields = posted(invoke(zendesk, with_token(login_token(name="Jane Doe", tags=["vip"]))))
    reply = post_form(standin_app(), fields)
    assert reply.status == 200
    text = reply.body.decode()
    assert f"Signed in as {EMAIL}" in text
    assert RETURN_TO in text
    assert fields["jwt"] not in text


def test_the_standin_also_takes_the_deprecated_get(zendesk: ModuleType) -> None:
    assert call(standin_app(), f"/access/jwt?{urlencode({'jwt': hand_made(fresh())})}").status == 200


def test_the_standins_home_sends_sign_in_to_the_remote_login_url_with_zendesks_parameters() -> None:
    for path in ("/", "/hc/en-us"):
        [href] = re.findall(r'href="([^"]*)"', call(standin_app(), path).body.decode())
        url = urlsplit(href.replace("&amp;", "&"))
        assert f"{url.scheme}://{url.netloc}{url.path}" == STANDIN_LOGIN
        params = parse_qs(url.query)
        assert params["return_to"] == [f"https://{ACCOUNT_HOST}/hc/en-us"]
        assert params["brand_id"] == [standin.ZENDESK_BRAND_ID]
        assert params["locale_id"] == ["1"]
        assert abs(int(params["timestamp"][0]) - time.time()) < 5


def test_the_standin_refuses_a_replayed_jti() -> None:
    app, token = standin_app(), hand_made(fresh())
    assert post_form(app, {"jwt": token}).status == 200
    assert post_form(app, {"jwt": token}).status == 401


STANDIN_REFUSALS: dict[str, Callable[[], str]] = {
    "iat four minutes old": lambda: hand_made(fresh(iat=int(time.time()) - 240)),
    "iat four minutes ahead": lambda: hand_made(fresh(iat=int(time.time()) + 240)),
    "iat as a string": lambda: hand_made(fresh(iat=str(int(time.time())))),
    "no jti": lambda: hand_made({k: v for k, v in fresh().items() if k != "jti"}),
    "no name": lambda: hand_made({k: v for k, v in fresh().items() if k != "name"}),
    "no email": lambda: hand_made({k: v for k, v in fresh().items() if k != "email"}),
    "another key": lambda: hand_made(fresh(), key=LOGIN_TOKEN_KEY),
    "no typ": lambda: hand_made(fresh(), headers={"typ": None}),
    "HS512": lambda: jwt.encode(fresh(), ZD_KEY + ZD_KEY, algorithm="HS512"),
    "alg none": lambda: jwt.encode(fresh(), None, algorithm="none"),
    "expired exp": lambda: hand_made(fresh(exp=int(time.time()) - 600)),
    "not a jwt": lambda: "not.a.jwt",
}


@pytest.mark.parametrize("make", STANDIN_REFUSALS.values(), ids=STANDIN_REFUSALS.keys())
def test_the_standin_refuses_what_zendesk_refuses(make: Callable[[], str]) -> None:
    reply = post_form(standin_app(), {"jwt": make()})
    assert reply.status == 401
    assert "Signed in" not in reply.body.decode()


def test_the_standins_refusal_comes_back_to_the_bridge_as_zendesks_does(zendesk: ModuleType) -> None:
    # A stale token: Zendesk sends the browser to the Remote logout URL with its message
    reply = post_form(standin_app(STANDIN_LOGOUT), {"jwt": hand_made(fresh(iat=int(time.time()) - 240))})
    assert reply.status == 302
    location = dict(reply.headers)["Location"]
    assert location.startswith(f"{STANDIN_LOGOUT}?message=")
    assert location.endswith("&kind=error")
    # And the bridge's logout route shows it
    response = logout(zendesk, urlsplit(location).query)
    assert Page(response["body"]).quotes == [IAT_OFF]


@pytest.mark.parametrize(
    ("target", "method", "content_type", "status"),
    [
        ("/", "POST", "application/x-www-form-urlencoded", 405),
        ("/hc/en-us", "PUT", None, 405),
        ("/access/jwt", "PUT", None, 405),
        ("/access/jwt", "POST", "application/json", 415),
        ("/access/jwt?jwt=x", "POST", "application/x-www-form-urlencoded", 400),  # posted jwt and one in the URL
    ],
)
def test_the_standin_takes_posts_only_as_a_form_on_access_jwt(
    target: str, method: str, content_type: str | None, status: int
) -> None:
    reply = call(standin_app(), target, method, b"jwt=y", content_type)
    assert reply.status == status
    if status == 405:
        allowed = "GET, HEAD, POST" if target.startswith("/access/jwt") else "GET, HEAD"
        assert ("Allow", allowed) in reply.headers


def test_the_standin_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    app = standin_app(STANDIN_LOGOUT)
    post_form(app, {"jwt": hand_made(fresh())})
    post_form(app, {"jwt": hand_made(fresh(), key=LOGIN_TOKEN_KEY)})
    assert capsys.readouterr() == ("", "")


def test_the_standins_spec_names_zendesks_settings() -> None:
    spec = standin.SPEC
    assert (spec.vendor, spec.host_setting, spec.secret_setting, spec.seed_var, spec.login_path) == (
        "zendesk",
        "ZENDESK_ACCOUNT_URL",
        "ZENDESK_SECRET_ID",
        "ZENDESK_JWT_SECRET",
        "/zendesk/login",
    )
    from local.vendors.site import StandInContext

    app = spec.make(StandInContext("yourcompany.zendesk.com", ZD_KEY, "http://127.0.0.1:3000/zendesk/login", {}))
    reply = post_form(app, {"jwt": hand_made(fresh(iat=0))})
    assert dict(reply.headers)["Location"].startswith("http://127.0.0.1:3000/zendesk/logout?message=")
