"""What every local vendor stand-in shares: the page, the refusal, the query and the token checks.

Decoding a token with the key that signed it proves little about whether the vendor will take it. The stand-ins
(one module per vendor in this package) accept or refuse tokens the way each vendor's own docs say it does
(``vendor-docs/``, the README's vendor sections), so the local stack and the browser tests end on the page a user
would really see, or on the refusal a vendor would really give. Each knows its public host from configuration,
never from the request, because it is reached on plain http ports (``make run``) as well as under the vendor's
real name over HTTPS (browser tests).

PyJWT checks the signature, the algorithm (HS256 only) and that every required claim is there. Times and
types are checked here, with each vendor's own window, and strictly as whole seconds: PyJWT's ``int()``
would take ``"1700000000"`` or ``1.5``, which a vendor's stricter parser may not.

Pages never show the token, and the apps print nothing: the token is a live credential until it expires.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import jwt
from jwt.types import Options

from local.pages import html_reply
from local.server import App, Reply, Request
from local.vendors.operations import LinkRules, ProbeFactory
from local.vendors.portal import Portal, PortalFactory, simple_portal

__all__ = [
    "Refused",
    "Route",
    "Site",
    "StandInContext",
    "StandInSpec",
    "check_exp_nbf",
    "check_iat",
    "claims_html",
    "decode",
    "form",
    "host_of",
    "link",
    "param",
    "query",
    "seconds",
    "signed_in",
    "site_app",
    "text",
]


Route = Callable[[Request], Reply]


@dataclass(frozen=True)
class StandInContext:
    """What a stand-in is made with: the vendor's host, the key seeded for it, the bridge route it sends users to."""

    host: str  # the public host the real site would have
    key: str  # the shared secret; for an RSA vendor, the private key's PEM (the stand-in keeps the public half)
    login_url: str  # the bridge's route on the local HTTP API (what an admin pastes into the vendor)
    env: Mapping[str, str]  # the function's environment, for the vendor's other settings (company id, client id)


@dataclass(frozen=True)
class StandInSpec:
    """One vendor's stand-in, as the local stack plans it (``local.standins``): each vendor module exports ``SPEC``."""

    vendor: str  # the function's folder: zendesk
    title: str  # Zendesk help center
    host_setting: str  # the function variable naming the vendor's host, as a URL or a bare host
    secret_setting: str  # the function variable holding the vendor key's secret id
    seed_var: str  # the shell variable `make run` seeds that key from (generated when unset)
    login_path: str  # the bridge route the vendor sends users to
    entry: str  # the stand-in page to open first
    defaults: Mapping[str, str]  # placeholder settings that let `make run` start (LOCAL_DEFAULTS)
    make: Callable[[StandInContext], App]
    key_kind: Literal["secret", "rsa"] = "secret"
    # What the operator commands know of the vendor (local.vendors.operations): how `make smoke` signs in there
    # (None: a redirect to host_setting's host carrying a JWT), and where `make link` may land.
    probe: ProbeFactory | None = None
    links: LinkRules = field(default_factory=LinkRules)
    # What the vendor sends and how it checks the answer, for the tests (local.vendors.portal). None: the
    # simplest portal's, nothing sent and a redirect to host_setting's host with an HS256 JWT in ``token``.
    portal: PortalFactory | None = None
    # Every host the vendor's side answers on, from the function's environment, where users start first (Canny:
    # the board, then canny.io). None: the one host ``host_setting`` names.
    hosts: Callable[[Mapping[str, str]], Sequence[str]] | None = None

    def portal_in(self, env: Mapping[str, str], key: str) -> Portal:
        """The vendor's side of a sign-in under the function settings ``env`` and the vendor key ``key``."""
        make = self.portal if self.portal is not None else simple_portal(self.vendor, self.host_setting)
        return make(env, key)

    def hosts_in(self, env: Mapping[str, str]) -> tuple[str, ...]:
        """The hosts ``make`` is called for, lower case, each once (read leniently: the function judges them)."""
        found = self.hosts(env) if self.hosts is not None else [host_of(env.get(self.host_setting, ""))]
        return tuple(dict.fromkeys(host.strip().lower() for host in found if host.strip()))


def host_of(setting: str) -> str:
    """A setting's host: ``https://acme.example.com/login`` or a bare ``acme.example.com``; empty when it has none."""
    value = setting.strip()
    if "://" not in value:
        return value.lower() if value and not set("/?#@ ") & set(value) else ""
    try:
        return (urlsplit(value).hostname or "").lower()
    except ValueError:
        return ""


class Refused(Exception):
    """A refusal page; ``reason`` is always one of this module's fixed strings, never request data."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Site:
    vendor: str  # ClickFunnels
    title: str  # Customer center
    host: str  # the public host the real site would have

    def note(self) -> str:
        return (
            f"<p><small>Local stand-in for {escape(self.vendor)}'s {escape(self.title.lower())} at "
            f"<code>https://{escape(self.host)}</code>: it checks tokens as {escape(self.vendor)}'s docs say, "
            "nothing more.</small></p>"
        )

    def page(self, status: int, heading: str, body_html: str, *, title: str | None = None) -> Reply:
        page_title = f"{title} · {self.title} (local stand-in)" if title else f"{self.title} (local stand-in)"
        return html_reply(status, page_title, f"<h1>{escape(heading)}</h1>{body_html}{self.note()}")


# Request plumbing shared by the three apps.


def site_app(site: Site, routes: Mapping[str, Route], *, post: Collection[str] = ()) -> App:
    """The vendor's pages: GET and HEAD everywhere, POST only on the paths in ``post`` (a form the vendor takes)."""

    def app(request: Request) -> Reply:
        methods = ("GET", "HEAD", "POST") if request.path in post else ("GET", "HEAD")
        if request.method not in methods:
            body = f"<p>Only {', '.join(methods[:-1])} and {methods[-1]} are answered here.</p>"
            reply = site.page(405, "Method not allowed", body, title="Method not allowed")
            reply.headers.append(("Allow", ", ".join(methods)))
            return reply
        route = routes.get(request.path)
        if route is None:
            return site.page(404, "Page not found", "<p>There is nothing at this address.</p>", title="Page not found")
        try:
            return route(request)
        except Refused as refused:
            body = f"<p class=error>{escape(refused.reason)}</p>"
            return site.page(refused.status, "Sign-in refused", body, title="Sign-in refused")

    return app


def query(request: Request) -> dict[str, str]:
    params = parse_qs(request.query, keep_blank_values=True)
    # Two values for one name is a link that was tampered with or built twice; no vendor picks one for you.
    if any(len(values) > 1 for values in params.values()):
        raise Refused(400, "A query parameter appears more than once.")
    return {name: values[0] for name, values in params.items()}


def form(request: Request) -> dict[str, str]:
    """A POST's form fields (``application/x-www-form-urlencoded``, UTF-8), with the query's rule for repeats."""
    content_type = (request.header("Content-Type") or "").split(";", 1)[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise Refused(415, "The form is not sent as application/x-www-form-urlencoded.")
    try:
        body = request.body.decode()
    except UnicodeDecodeError:
        raise Refused(400, "The form is not UTF-8.") from None
    params = parse_qs(body, keep_blank_values=True)
    if any(len(values) > 1 for values in params.values()):
        raise Refused(400, "A form field appears more than once.")
    return {name: values[0] for name, values in params.items()}


def param(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise Refused(400, f"The request has no {name} parameter.")
    return value


# Token checks.


def decode(token: str, key: str, required: Sequence[str], *, algorithm: str = "HS256") -> dict[str, Any]:
    """The claims of ``token`` signed with ``algorithm`` only: for RS256, ``key`` is the public key's PEM."""
    options: Options = {
        "require": list(required),
        # Times and types are checked by the caller (see the module docstring); no vendor defines aud, iss.
        "verify_exp": False,
        "verify_nbf": False,
        "verify_iat": False,
        "verify_aud": False,
        "verify_iss": False,
        "verify_sub": False,
        "verify_jti": False,
    }
    whose = "the public key" if algorithm.startswith("RS") else "the key"
    try:
        claims: dict[str, Any] = jwt.decode(token, key, algorithms=[algorithm], options=options)
    except jwt.InvalidAlgorithmError:
        raise Refused(401, f"The token is not signed with {algorithm}.") from None
    except jwt.InvalidSignatureError:
        raise Refused(401, f"The token's signature does not match {whose}.") from None
    except jwt.MissingRequiredClaimError as missing:
        # The name is one of ``required``, never text from the token.
        raise Refused(401, f"The token has no {missing.claim} claim.") from None
    except jwt.PyJWTError:
        raise Refused(401, "The token is not a well-formed JWT.") from None
    return claims


def seconds(claims: Mapping[str, Any], name: str) -> int:
    value = claims[name]
    if type(value) is not int:  # not bool, not float, not a numeric string
        raise Refused(401, f"The token's {name} claim is not a whole number of seconds.")
    return value


def text(claims: Mapping[str, Any], name: str) -> str:
    value = claims[name]
    if not isinstance(value, str) or not value.strip():
        raise Refused(401, f"The token's {name} claim is not a non-empty string.")
    return value


def check_exp_nbf(claims: Mapping[str, Any], now: float, skew: int, *, expired: str) -> None:
    """``exp`` and ``nbf`` when present, as any JWT library checks them, with the vendor's tolerance."""
    if "exp" in claims and seconds(claims, "exp") <= now - skew:
        raise Refused(401, expired)
    if "nbf" in claims and seconds(claims, "nbf") > now + skew:
        raise Refused(401, "The token is not valid yet (nbf).")


def check_iat(claims: Mapping[str, Any], now: float, skew: int) -> int:
    iat = seconds(claims, "iat")
    if iat > now + skew:
        raise Refused(401, "The token was issued in the future (iat).")
    return iat


# Pages.


def claims_html(claims: Mapping[str, Any]) -> str:
    """The verified claims, for whoever is debugging the bridge (claims are not secret; the token is)."""
    items = []
    for name, value in claims.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        items.append(f"<li><code>{escape(str(name))}</code>: <code>{escape(shown)}</code></li>")
    return f"<h2>Verified claims</h2><ul>{''.join(items)}</ul>"


def signed_in(site: Site, email: str, details_html: str, claims: Mapping[str, Any]) -> Reply:
    body = f"<p>Welcome to the {escape(site.title.lower())}.</p>{details_html}{claims_html(claims)}"
    return site.page(200, f"Signed in as {email}", body, title="Signed in")


def link(url: str, text: str) -> str:
    return f'<p><a href="{escape(url)}">{escape(text)}</a></p>'
