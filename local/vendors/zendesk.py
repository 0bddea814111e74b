"""A Zendesk help center, played locally (support.zendesk.com "Enabling JWT single sign-on" and "Anatomy of a JWT
request"; github.com/zendesk/zendesk_jwt_sso_examples)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from html import escape
from urllib.parse import quote_plus, urlencode

import jwt

from local.server import App, Reply, Request
from local.vendors.operations import HostSetting, LinkRules, Probe, Settings, is_jwt, setting_host
from local.vendors.portal import Portal, hosts_of, hs256_reader, plain_query
from local.vendors.site import (
    Refused,
    Site,
    StandInContext,
    StandInSpec,
    check_exp_nbf,
    decode,
    form,
    link,
    param,
    query,
    seconds,
    signed_in,
    site_app,
    text,
)

__all__ = ["SPEC", "ZENDESK_BRAND_ID", "ZENDESK_SKEW_SECONDS", "zendesk"]
# "The supplied iat value is more than 3 minutes off, check your server clock": Zendesk's window, either way.
ZENDESK_SKEW_SECONDS = 180
# A brand id as Zendesk sends it to the Remote login URL (a multibrand account's brand; one brand here).
ZENDESK_BRAND_ID = "360000000001"
HELP_CENTER_PATH = "/hc/en-us"
_IAT_OFF = "Invalid iat parameter. The supplied iat value is more than 3 minutes off, check your server clock."


def zendesk(*, account_host: str, key: str, remote_login_url: str, remote_logout_url: str | None = None) -> App:
    """A Zendesk account's help center at ``https://{account_host}`` with JWT single sign-on for end users.

    Its docs: Sign in goes to the Remote login URL with ``return_to``, ``brand_id``, ``locale_id`` and
    ``timestamp``; the user comes back to ``/access/jwt`` with ``jwt`` (and ``return_to``) in a POST form, or in the
    query (GET: deprecated, still taken). The token: HS256 with the shared secret, header ``typ: JWT``, ``iat``
    within 3 minutes of Zendesk's clock, ``jti`` never seen before, ``email`` and ``name``. A refusal goes to the
    Remote logout URL as ``message=...&kind=error`` when one is set, as Zendesk's does.
    """
    site = Site("Zendesk", "Help center", account_host)
    used: set[str] = set()
    used_lock = threading.Lock()

    def sign_in_url() -> str:
        params = {
            "return_to": f"https://{account_host}{HELP_CENTER_PATH}",
            "brand_id": ZENDESK_BRAND_ID,
            "locale_id": "1",
            "timestamp": str(int(time.time())),
        }
        return f"{remote_login_url}{'&' if '?' in remote_login_url else '?'}{urlencode(params)}"

    def home(request: Request) -> Reply:
        body = f"<p>Search articles or submit a request.</p>{link(sign_in_url(), 'Sign in')}"
        return site.page(200, "Help center (local stand-in)", body)

    def fields(request: Request) -> dict[str, str]:
        """The query, and for a POST its form too (Zendesk's own example posts jwt with the rest in the URL)."""
        params = query(request)
        if request.method != "POST":
            return params
        posted = form(request)
        if params.keys() & posted.keys():
            raise Refused(400, "A parameter is both in the URL and in the form.")
        return {**params, **posted}

    def check(params: dict[str, str]) -> Reply:
        token = param(params, "jwt")
        claims = decode(token, key, ["iat", "jti", "email", "name"])
        # Only a signed header is worth judging; before the signature check it is anyone's text.
        if jwt.get_unverified_header(token).get("typ") != "JWT":
            raise Refused(401, "The token's header has no typ JWT.")
        now = time.time()
        check_exp_nbf(claims, now, ZENDESK_SKEW_SECONDS, expired="The token has expired.")
        if abs(now - seconds(claims, "iat")) > ZENDESK_SKEW_SECONDS:
            raise Refused(401, _IAT_OFF)
        jti, email, name = text(claims, "jti"), text(claims, "email"), text(claims, "name")
        # Last, so only a token that would sign someone in uses up its jti.
        with used_lock:
            if jti in used:
                raise Refused(401, "The JWT jti has already been used.")
            used.add(jti)
        details = f"<p>Name: <strong>{escape(name)}</strong></p>"
        if params.get("return_to"):
            details += f"<p>Zendesk would now take you to <code>{escape(params['return_to'])}</code>.</p>"
        return signed_in(site, email, details, claims)

    def access_jwt(request: Request) -> Reply:
        params = fields(request)
        try:
            return check(params)
        except Refused as refused:
            if remote_logout_url is None:
                raise
            # Zendesk's way: back to the Remote logout URL with its message (the reason is fixed text, never the token).
            separator = "&" if "?" in remote_logout_url else "?"
            location = f"{remote_logout_url}{separator}message={quote_plus(refused.reason)}&kind=error"
            return Reply(302, [("Location", location), ("Cache-Control", "no-store")])

    routes = {"/": home, HELP_CENTER_PATH: home, "/access/jwt": access_jwt}
    return site_app(site, routes, post={"/access/jwt"})


def _make(context: StandInContext) -> App:
    """The admin's two URLs: the bridge's login route, and its logout route beside it."""
    login_path = "/zendesk/login"
    logout = (
        context.login_url[: -len(login_path)] + "/zendesk/logout" if context.login_url.endswith(login_path) else None
    )
    return zendesk(
        account_host=context.host, key=context.key, remote_login_url=context.login_url, remote_logout_url=logout
    )


def _smoke_probe(settings: Settings, key: str | None) -> Probe:
    """`make smoke`: Zendesk sends the visitor with ``return_to`` (and ``timestamp``); the answer is a page whose form
    posts ``jwt`` and that ``return_to`` to ``{account}/access/jwt`` at once, the token kept out of every URL."""
    account = setting_host(settings("ZENDESK_ACCOUNT_URL"))
    return_to = f"https://{account}{HELP_CENTER_PATH}" if account else None
    query = {"return_to": return_to, "timestamp": str(int(time.time()))} if return_to else {}

    def carries(fields: Mapping[str, str]) -> str | None:
        if not is_jwt(fields.get("jwt", "")):
            return "without a jwt field holding a token"
        if return_to and fields.get("return_to") != return_to:
            return "without the return_to Zendesk sent"
        return None

    return Probe("zendesk", query=query, host=account, path="/access/jwt", form=True, carries=carries)


def _portal(env: Mapping[str, str], key: str) -> Portal:
    """Zendesk's remote login: the page the visitor wanted, its brand and locale, a timestamp."""
    account = env["ZENDESK_ACCOUNT_URL"].rstrip("/")
    sent = {"return_to": f"{account}/hc/en-us/requests/4242", "brand_id": "360001234567", "locale_id": "1"}
    return Portal(
        "zendesk",
        params=("return_to", "brand_id", "locale_id", "timestamp"),
        build=plain_query({**sent, "timestamp": "1795455830"}),
        hosts=hosts_of(account, env.get("ZENDESK_HOSTS", "")),
        credentials=("jwt",),
        read=hs256_reader("jwt", key),
        destination="return_to",
        posts_form=True,
    )


SPEC = StandInSpec(
    vendor="zendesk",
    title="Zendesk help center",
    host_setting="ZENDESK_ACCOUNT_URL",
    secret_setting="ZENDESK_SECRET_ID",  # noqa: S106 - a variable name, not a secret
    seed_var="ZENDESK_JWT_SECRET",
    login_path="/zendesk/login",
    entry=HELP_CENTER_PATH,
    defaults={"ZENDESK_ACCOUNT_URL": "https://yourcompany.zendesk.com"},
    make=_make,
    probe=_smoke_probe,
    # A link's destination comes back as return_to, on the account's host or a host-mapped help center's.
    links=LinkRules(
        hosts=(HostSetting("ZENDESK_ACCOUNT_URL", "url", required=True), HostSetting("ZENDESK_HOSTS", "hosts"))
    ),
    portal=_portal,
)
