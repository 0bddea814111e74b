"""Canny, played locally: its SSO endpoint on ``canny.io`` and a company's feedback board on the board's own host.

Canny's docs (help.canny.io "Setting up a single sign-on (SSO) redirect"; developers.canny.io's SSO token page;
help.canny.io "Single Sign-On (SSO)"): the board's "Log in" sends the visitor to the company's login URL with
``companyID`` and ``redirect``; the visitor comes back to ``https://canny.io/api/redirects/sso`` with ``companyID``,
``ssoToken`` and ``redirect``. The token is HS256 with the company's SSO private key, of ``email``, ``id`` and
``name``, with ``avatarURL`` optional; an ``exp``, when there is one, is honoured. ``companyID`` tells Canny which
key to verify with, and the visitor ends on ``redirect``, a page of that company's board.

Two hosts, so two apps: ``make(ctx)`` builds the one for ``ctx.host``: the SSO endpoint for ``canny.io``
(``CANNY_HOST``), the board for any other host (``CANNY_PORTAL_URL``'s, or one of ``CANNY_REDIRECT_HOSTS``).
``SPEC.hosts`` (``standin_hosts``) lists them for the local stack, the board first (where a visitor starts).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from html import escape
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from local.server import App, Reply, Request
from local.vendors.operations import LinkRules, Probe, Settings, is_jwt
from local.vendors.portal import Portal, first_of, hosts_of, hs256_reader, plain_query
from local.vendors.site import (
    Refused,
    Site,
    StandInContext,
    StandInSpec,
    check_exp_nbf,
    decode,
    host_of,
    link,
    param,
    query,
    seconds,
    signed_in,
    site_app,
    text,
)

__all__ = [
    "CANNY_HOST",
    "CANNY_SKEW_SECONDS",
    "SPEC",
    "SSO_PATH",
    "board_hosts",
    "canny_board",
    "canny_sso",
    "make",
    "standin_hosts",
]

CANNY_HOST = "canny.io"  # Canny's SSO endpoint is on its own host, whatever the board's domain
SSO_PATH = "/api/redirects/sso"
# The doc names no tolerance for a clock ahead of theirs; a minute, as for the other stand-ins.
CANNY_SKEW_SECONDS = 60
_BOARD_HOST = "yourcompany.canny.io"  # the placeholder board `make run` serves
_BOARD_PAGE = "/feature-requests"


def board_hosts(env: Mapping[str, str]) -> tuple[str, ...]:
    """The board's hosts, as the function reads them (read leniently: the function refuses bad ones)."""
    hosts = [host_of(env.get("CANNY_PORTAL_URL", ""))]
    hosts += [host_of(host) for host in env.get("CANNY_REDIRECT_HOSTS", "").split(",")]
    return tuple(dict.fromkeys(host for host in hosts if host))


def standin_hosts(env: Mapping[str, str]) -> tuple[str, ...]:
    """Every host Canny's side answers on: the board's, then Canny's own (the SSO endpoint)."""
    return (*board_hosts(env), CANNY_HOST)


def _on_board(redirect: str, hosts: Collection[str]) -> bool:
    """Canny sends the visitor on to ``redirect``: a page of this company's board, nothing else."""
    try:
        parts = urlsplit(redirect)
        port = parts.port
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    return parts.scheme == "https" and "@" not in parts.netloc and port in (None, 443) and host in hosts


def _identifier(claims: Mapping[str, Any]) -> str:
    """``id``: a user's id in the company's app; its type is not documented, so a string or a whole number."""
    value = claims["id"]
    if type(value) is int:
        return str(value)
    return text(claims, "id")


def canny_sso(*, key: str, company_id: str, hosts: Collection[str]) -> App:
    """Canny's ``https://canny.io/api/redirects/sso`` for one company: ``company_id``, its SSO ``key``, its board's
    ``hosts``. A token it accepts ends on "Signed in as ..." with the page Canny would open next."""
    site = Site("Canny", "Feedback board", CANNY_HOST)

    def home(request: Request) -> Reply:
        boards = "".join(link(f"https://{host}/", f"Feedback board at {host}") for host in hosts)
        return site.page(200, "Canny (local stand-in)", f"<p>Canny's SSO endpoint is {SSO_PATH}.</p>{boards}")

    def sso(request: Request) -> Reply:
        params = query(request)
        # companyID picks the key Canny verifies with: another company's id is another key.
        if param(params, "companyID") != company_id:
            raise Refused(400, "This companyID is not the company whose SSO key signs here.")
        token = param(params, "ssoToken")
        redirect = param(params, "redirect")
        if not _on_board(redirect, hosts):
            raise Refused(400, "The redirect is not a page of this company's board.")
        claims = decode(token, key, ["email", "id", "name"])
        now = time.time()
        check_exp_nbf(claims, now, CANNY_SKEW_SECONDS, expired="The SSO token has expired (exp).")
        if "iat" in claims:
            seconds(claims, "iat")
        email, user_id, name = text(claims, "email"), _identifier(claims), text(claims, "name")
        if "avatarURL" in claims:
            text(claims, "avatarURL")
        details = (
            f"<p>Name: <strong>{escape(name)}</strong>, id <code>{escape(user_id)}</code>.</p>"
            f"<p>Canny would now take you to <code>{escape(redirect)}</code>.</p>{link(redirect, 'Go to the board')}"
        )
        return signed_in(site, email, details, claims)

    return site_app(site, {"/": home, SSO_PATH: sso})


def _login_url(login_url: str, company_id: str, redirect: str) -> str:
    """The company's SSO redirect URL as Canny opens it: its own query kept, ``companyID`` and ``redirect`` added."""
    pairs = f"companyID={quote(company_id, safe='')}&redirect={quote(redirect, safe='')}"
    parts = urlsplit(login_url)
    return urlunsplit(parts._replace(query=f"{parts.query}&{pairs}" if parts.query else pairs))


def canny_board(*, board_host: str, company_id: str, login_url: str) -> App:
    """A company's feedback board at ``https://{board_host}`` with an SSO redirect set to ``login_url``: its
    "Log in" links send the visitor there with ``companyID`` and the page to come back to."""
    site = Site("Canny", "Feedback board", board_host)

    def page(path: str, heading: str, blurb: str) -> Reply:
        back = f"https://{board_host}{path}"
        body = f"<p>{escape(blurb)}</p>{link(_login_url(login_url, company_id, back), 'Log in')}"
        return site.page(200, heading, body)

    def home(request: Request) -> Reply:
        body = f"<p>Tell us how we could improve.</p>{link(_BOARD_PAGE, 'Feature requests')}"
        login = link(_login_url(login_url, company_id, f"https://{board_host}/"), "Log in")
        return site.page(200, "Feedback board (local stand-in)", body + login)

    def board(request: Request) -> Reply:
        return page(_BOARD_PAGE, "Feature requests", "Log in to post an idea or vote.")

    return site_app(site, {"/": home, _BOARD_PAGE: board})


def make(ctx: StandInContext) -> App:
    """The app for ``ctx.host``: Canny's SSO endpoint on ``canny.io``, the board on any other host."""
    company_id = ctx.env.get("CANNY_COMPANY_ID", "").strip()
    if ctx.host == CANNY_HOST:
        return canny_sso(key=ctx.key, company_id=company_id, hosts=board_hosts(ctx.env))
    return canny_board(board_host=ctx.host, company_id=company_id, login_url=ctx.login_url)


def _smoke_probe(settings: Settings, key: str | None) -> Probe:
    """`make smoke`: Canny sends ``companyID`` and ``redirect`` (a page of the board); the answer is a redirect to
    Canny's SSO endpoint with an ``ssoToken`` and both passed back."""
    company_id = (settings("CANNY_COMPANY_ID") or "").strip()
    boards = board_hosts({name: settings(name) or "" for name in ("CANNY_PORTAL_URL", "CANNY_REDIRECT_HOSTS")})
    sent = {"companyID": company_id, "redirect": f"https://{boards[0]}{_BOARD_PAGE}"} if company_id and boards else {}

    def carries(params: Mapping[str, str]) -> str | None:
        if not is_jwt(params.get("ssoToken", "")):
            return "without an ssoToken"
        if any(params.get(name) != value for name, value in sent.items()):
            return "without the companyID and redirect Canny sent"
        return None

    return Probe("canny", query=sent, host=CANNY_HOST, path=SSO_PATH, carries=carries)


def _portal(env: Mapping[str, str], key: str) -> Portal:
    """Canny's Log in: which company, and the board page to come back to."""
    board = first_of(env["CANNY_REDIRECT_HOSTS"])
    return Portal(
        "canny",
        params=("companyID", "redirect"),
        build=plain_query({"companyID": env["CANNY_COMPANY_ID"], "redirect": f"https://{board}/feature-requests"}),
        hosts=hosts_of(CANNY_HOST, env["CANNY_REDIRECT_HOSTS"], env.get("CANNY_PORTAL_URL", "")),
        credentials=("ssoToken",),
        read=hs256_reader("ssoToken", key),
        destination="redirect",
    )


SPEC = StandInSpec(
    vendor="canny",
    title="Canny feedback board",
    # The board's host; Canny's own (canny.io, the SSO endpoint) is served too: see standin_hosts.
    host_setting="CANNY_PORTAL_URL",
    secret_setting="CANNY_SECRET_ID",  # noqa: S106 - a variable's name, not a secret
    seed_var="CANNY_JWT_SECRET",
    login_path="/canny/login",
    entry=_BOARD_PAGE,
    defaults={
        # A made-up id in Canny's format (24 hex digits): the stand-ins and the function agree on it.
        "CANNY_COMPANY_ID": "0123456789abcdef01234567",
        "CANNY_REDIRECT_HOSTS": _BOARD_HOST,
        "CANNY_PORTAL_URL": f"https://{_BOARD_HOST}/",
    },
    make=make,
    hosts=standin_hosts,
    probe=_smoke_probe,
    # No deep link: the function sends a link's reader to CANNY_PORTAL_URL (a 400 without one).
    links=LinkRules(landing="CANNY_PORTAL_URL"),
    portal=_portal,
)
