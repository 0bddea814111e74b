"""Every vendor as the cross-cutting tests meet it: which vendors there are, what each sends, how each reads an answer.

The vendors, their routes and settings come from template.yaml (``ops.vendor_template``, ``local.template``): a
function with a function URL is a vendor, named by its ``CodeUri`` folder. What a vendor *sends* is not in the
template, so it is here, one small function per vendor (``PORTALS``), made from the function's settings (the tests'
``BASE_ENV``, or the local stack's ``LOCAL_DEFAULTS``) and the tests' keys: the query its portal puts on the bridge's
login URL, the hosts the bridge may send its users to, and where its credentials travel in the answer and how the
vendor checks them (its key, its algorithm). The hostile-events, logs, faults, cold-start and slow-dependency tests
read both; a vendor in the template without an entry here fails each of them naming the vendor and this module
(``portal``), so adding a portal tells you what to add.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlencode, urlsplit

import jwt

from local.template import functions, load_template
from ops.vendor_template import vendor_templates
from tests.helpers import VENDOR_KEYS

__all__ = [
    "JWT_SHAPED",
    "PORTALS",
    "VENDORS",
    "Deployed",
    "Portal",
    "deployed",
    "form_posts",
    "local_portal",
    "portal",
    "tokens_in",
]

# Every vendor function in template.yaml, in template order.
VENDORS: tuple[str, ...] = tuple(vendor_templates())
# A JWT's first two segments (``{"`` base64url-encoded starts every header): what no outage page may carry.
JWT_SHAPED = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+")


# --- what the template says --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployed:
    """One vendor's function as template.yaml defines it."""

    vendor: str
    logical_id: str
    routes: tuple[tuple[str, tuple[str, ...]], ...]  # HTTP API path -> its methods, in template order
    sign_in_path: str  # the route an email link's button posts back to
    environment: frozenset[str]  # the function's variable names (Globals' included)
    service: str  # its POWERTOOLS_SERVICE_NAME: the ``service`` of its log lines and metrics
    portal_name: str  # its PORTAL_NAME: what its pages call the vendor's site ("the help center")
    attaches_oidc_layer: bool  # lists the OIDC layer (cryptography) itself, OpenID Connect or not

    @property
    def event(self) -> str:
        """``events/<name>.json`` of the sign-in route on the HTTP API (``clickfunnels-sso-httpapi``)."""
        return f"{self.vendor}-{self.sign_in_path.rsplit('/', 1)[-1]}-httpapi"

    @property
    def url_event(self) -> str:
        """``events/<name>.json`` of the sign-in on the function URL."""
        return f"{self.vendor}-{self.sign_in_path.rsplit('/', 1)[-1]}-function-url"

    @property
    def records_jti(self) -> bool:
        """Writes an audit record per token to the jti table (the vendor refuses a replayed ``jti``)."""
        return "JTI_TABLE_NAME" in self.environment

    @property
    def get_only_paths(self) -> tuple[str, ...]:
        """Routes only a GET reaches: the vendor's remote logout (``/happyfox/logout``)."""
        return tuple(path for path, methods in self.routes if methods == ("GET",))


def _mentions(value: Any, logical_id: str) -> bool:
    if isinstance(value, dict):
        return value.get("Ref") == logical_id or any(_mentions(item, logical_id) for item in value.values())
    if isinstance(value, list):
        return any(_mentions(item, logical_id) for item in value)
    return False


@functools.cache
def _deployed() -> dict[str, Deployed]:
    template = load_template()
    parts = vendor_templates(template)
    found: dict[str, Deployed] = {}
    for spec in functions(template):
        vendor = Path(spec.code_uri).name
        if vendor not in parts:
            continue
        methods: dict[str, list[str]] = {}
        for route in spec.routes:
            methods.setdefault(route.path, []).append(route.method)
        sign_in_path = parts[vendor].sign_in_path
        assert sign_in_path, f"{vendor}: no HTTP API route takes POST (the email link's button posts back to it)"
        layers = template["Resources"][spec.logical_id].get("Properties", {}).get("Layers", [])
        found[vendor] = Deployed(
            vendor=vendor,
            logical_id=spec.logical_id,
            routes=tuple((path, tuple(names)) for path, names in methods.items()),
            sign_in_path=sign_in_path,
            environment=frozenset(spec.environment),
            service=str(spec.environment.get("POWERTOOLS_SERVICE_NAME", "")),
            portal_name=str(spec.environment.get("PORTAL_NAME", "")),
            attaches_oidc_layer=_mentions(layers, "OidcLayer"),
        )
    return found


def deployed(vendor: str) -> Deployed:
    return _deployed()[vendor]


# --- what each vendor sends, and how it reads the answer -----------------------------------------------------------

Query = dict[str, str]
Overrides = Mapping[str, str | None]


@dataclass(frozen=True)
class Portal:
    """One vendor's side of a sign-in, under one set of function settings."""

    vendor: str
    params: tuple[str, ...]  # what the vendor puts in the query (for Discourse also the fields it signs into sso)
    build: Callable[[Overrides], Query]  # its well-formed query, some parameters replaced (None: left out)
    hosts: frozenset[str]  # where the bridge may send a browser for this vendor, under these settings
    # The answer's parameters (in the Location's query or a posted form) that carry the vendor's token.
    credentials: tuple[str, ...]
    read: Callable[[Mapping[str, str]], dict[str, Any]]  # those credentials, checked as the vendor checks them
    destination: str | None = None  # the parameter naming where the vendor should take the user afterwards
    hands_off: bool = False  # only the vendor can start the flow: without its request the bridge sends users to it
    posts_form: bool = False  # the token goes in a form the page posts at once (200), not in a redirect (302/303)
    email_of: Callable[[Mapping[str, Any]], str] = lambda claims: str(claims["email"])  # whom the claims name

    def query(self, **overrides: str | None) -> str:
        """The query the vendor sends, each value percent-encoded as a browser would."""
        return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in self.pairs(**overrides))

    def pairs(self, **overrides: str | None) -> list[tuple[str, str]]:
        return list(self.build(overrides).items())

    def sign_in(self, token: str | None, **overrides: str | None) -> str:
        """The vendor's query with the platform's login token appended (as it is: tests pass odd ones)."""
        query = self.query(**overrides)
        if token is None:
            return query
        return f"{query}&login_token={token}" if query else f"login_token={token}"

    def signed_in_status(self, method: str = "GET") -> int:
        """What a request that signs someone in is answered with."""
        if self.posts_form:
            return 200
        return 303 if method == "POST" else 302

    def found(self, location: str, body: str) -> dict[str, str]:
        """The credentials in an answer: in the Location's query, or in a form the page posts."""
        values: dict[str, str] = {}
        for name, items in parse_qs(urlsplit(location).query, keep_blank_values=True).items():
            if name in self.credentials:
                [values[name]] = items
        for _, fields in form_posts(body):
            values |= {name: value for name, value in fields.items() if name in self.credentials}
        return values

    def claims(self, location: str, body: str = "") -> dict[str, Any]:
        """Whom the answer signs in, verified as the vendor verifies it; fails when the answer signs nobody in."""
        values = self.found(location, body)
        missing = [name for name in self.credentials if name not in values]
        assert not missing, f"{self.vendor}: no {', '.join(missing)} in the answer ({location[:120]!r})"
        return self.read(values)

    def email(self, location: str, body: str = "") -> str:
        """The email of the user the answer signs in, from the verified credentials."""
        return self.email_of(self.claims(location, body))


def portal(vendor: str, env: Mapping[str, str] | None = None, keys: Mapping[str, str] | None = None) -> Portal:
    """``vendor``'s side, under ``env`` (default: the unit tests' settings) and ``keys`` (default: the tests')."""
    try:
        make = PORTALS[vendor]
    except KeyError:
        raise LookupError(
            f"{vendor!r} is a vendor in template.yaml, but tests/vendor_requests.py does not say what it sends: add "
            f"a function building its request (its parameters, hosts, credentials and how it checks them) to "
            f"PORTALS under {vendor!r}"
        ) from None
    if env is None:
        from tests.conftest import BASE_ENV

        env = BASE_ENV
    return make(env, {**VENDOR_KEYS, **(keys or {})})


def local_portal(vendor: str, env: Mapping[str, str] | None = None, keys: Mapping[str, str] | None = None) -> Portal:
    """``vendor``'s side under `make run`'s settings (``LOCAL_DEFAULTS``), ``env`` over them (a test stack's own)."""
    from local.lambdas import LOCAL_DEFAULTS

    return portal(vendor, {**LOCAL_DEFAULTS, **(env or {})}, keys)


def tokens_in(texts: Iterable[str]) -> list[str]:
    """Every JWT-shaped fragment in ``texts``."""
    return [match.group(0) for text in texts for match in JWT_SHAPED.finditer(text)]


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append((attributes.get("action", ""), {}))
        elif tag == "input" and self.forms and "name" in attributes:
            self.forms[-1][1][attributes["name"]] = attributes.get("value", "")


def form_posts(body: str) -> list[tuple[str, dict[str, str]]]:
    """Each form on a page: its action and its named fields."""
    if "<form" not in body:
        return []
    parser = _Forms()
    parser.feed(body)
    parser.close()
    return parser.forms


def _hosts(*values: str) -> frozenset[str]:
    """Hosts from settings: URLs or comma-separated bare hosts, empty ones skipped."""
    found: set[str] = set()
    for value in values:
        for item in value.split(","):
            item = item.strip().lower()
            if item:
                found.add((urlsplit(item).hostname or "") if "://" in item else item)
    return frozenset(found - {""})


def _first(hosts: str) -> str:
    return hosts.split(",")[0].strip()


def _plain(defaults: Mapping[str, str]) -> Callable[[Overrides], Query]:
    def build(overrides: Overrides) -> Query:
        return {name: value for name, value in {**defaults, **overrides}.items() if value is not None}

    return build


def _hs256(name: str, key: str, **options: Any) -> Callable[[Mapping[str, str]], dict[str, Any]]:
    def read(values: Mapping[str, str]) -> dict[str, Any]:
        claims: dict[str, Any] = jwt.decode(
            values[name], key, algorithms=["HS256"], options={"verify_exp": False}, **options
        )
        return claims

    return read


def _clickfunnels(env: Mapping[str, str], keys: Mapping[str, str]) -> Portal:
    # The platform links straight to the route; a deep link rides in redirect_to (or the login token).
    return Portal(
        "clickfunnels",
        params=("redirect_to",),
        build=_plain({}),
        hosts=_hosts(env["CLICKFUNNELS_WORKSPACE_DOMAIN"], env.get("CLICKFUNNELS_REDIRECT_HOSTS", "")),
        credentials=("token",),
        read=_hs256("token", keys["clickfunnels"]),
        destination="redirect_to",
        email_of=lambda claims: str(claims["sub"]).rsplit(":", 1)[0],  # sub: email:workspace domain
    )


def _kustomer(env: Mapping[str, str], keys: Mapping[str, str]) -> Portal:
    # Kustomer's Log in: an unsigned trackingToken (not needed) and where to come back to.
    brands = json.loads(env.get("KUSTOMER_BRANDS") or "{}")
    brand_hosts = [host for brand in brands.values() for host in brand.get("redirect_hosts", [])]
    portal_url = env.get("KUSTOMER_PORTAL_URL", "")
    return Portal(
        "kustomer",
        params=("kustomerRedirectUri", "trackingToken"),
        build=_plain({"kustomerRedirectUri": f"https://{_first(env['KUSTOMER_REDIRECT_HOSTS'])}/login"}),
        hosts=_hosts(env["KUSTOMER_REDIRECT_HOSTS"], portal_url, *brand_hosts),
        credentials=("externalToken",),
        read=_hs256("externalToken", keys["kustomer"]),
        destination="kustomerRedirectUri",
    )


def _happyfox(env: Mapping[str, str], keys: Mapping[str, str]) -> Portal:
    # HappyFox's remote login URL gets nothing of HappyFox's.
    return Portal(
        "happyfox",
        params=(),
        build=_plain({}),
        hosts=_hosts(env["HAPPYFOX_ACCOUNT_URL"]),
        credentials=("token",),
        read=_hs256("token", keys["happyfox"]),
    )


def _zendesk(env: Mapping[str, str], keys: Mapping[str, str]) -> Portal:
    # Zendesk's remote login: the page the visitor wanted, its brand and locale, a timestamp.
    account = env["ZENDESK_ACCOUNT_URL"].rstrip("/")
    sent = {"return_to": f"{account}/hc/en-us/requests/4242", "brand_id": "360001234567", "locale_id": "1"}
    return Portal(
        "zendesk",
        params=("return_to", "brand_id", "locale_id", "timestamp"),
        build=_plain({**sent, "timestamp": "1795455830"}),
        hosts=_hosts(account, env.get("ZENDESK_HOSTS", "")),
        credentials=("jwt",),
        read=_hs256("jwt", keys["zendesk"]),
        destination="return_to",
        posts_form=True,
    )


def _canny(env: Mapping[str, str], keys: Mapping[str, str]) -> Portal:
    # Canny's Log in: which company, and the board page to come back to.
    board = _first(env["CANNY_REDIRECT_HOSTS"])
    return Portal(
        "canny",
        params=("companyID", "redirect"),
        build=_plain({"companyID": env["CANNY_COMPANY_ID"], "redirect": f"https://{board}/feature-requests"}),
        hosts=_hosts("canny.io", env["CANNY_REDIRECT_HOSTS"], env.get("CANNY_PORTAL_URL", "")),
        credentials=("ssoToken",),
        read=_hs256("ssoToken", keys["canny"]),
        destination="redirect",
    )


def _discourse_hmac(text: str, key: str) -> str:
    return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()


def _discourse(env: Mapping[str, str], keys: Mapping[str, str]) -> Portal:
    """DiscourseConnect: ``sso`` (Base64 of nonce and return_sso_url) and ``sig`` (hex HMAC-SHA256 of that Base64),
    signed with the connect secret. Overriding ``nonce`` or ``return_sso_url`` signs the changed payload (what
    Discourse itself could send); overriding ``sso`` alone signs that text; ``sig`` replaces the signature."""
    origin = env["DISCOURSE_URL"].rstrip("/")
    key = keys["discourse"]
    signed = ("nonce", "return_sso_url")

    def build(overrides: Overrides) -> Query:
        payload: dict[str, str | None] = {
            "nonce": secrets.token_hex(16),
            "return_sso_url": f"{origin}/session/sso_login",
        }
        payload |= {name: value for name, value in overrides.items() if name in signed}
        fields = {name: value for name, value in payload.items() if value is not None}
        sso = overrides["sso"] if "sso" in overrides else base64.b64encode(urlencode(fields).encode()).decode()
        sig = overrides["sig"] if "sig" in overrides else _discourse_hmac(sso or "", key)
        rest = {name: value for name, value in overrides.items() if name not in {*signed, "sso", "sig"}}
        return {name: value for name, value in {"sso": sso, "sig": sig, **rest}.items() if value is not None}

    def read(values: Mapping[str, str]) -> dict[str, Any]:
        # As Discourse reads the answer: the HMAC of the sso text first, then its Base64 payload.
        assert hmac.compare_digest(_discourse_hmac(values["sso"], key), values["sig"]), "sig is not sso's HMAC"
        return dict(parse_qsl(base64.b64decode(values["sso"], validate=True).decode(), strict_parsing=True))

    return Portal(
        "discourse",
        params=("sso", "sig", *signed),
        build=build,
        hosts=_hosts(origin),
        credentials=("sso", "sig"),
        read=read,
        destination="return_sso_url",
        hands_off=True,
    )


@functools.cache
def _public_pem(private_pem: str) -> str:
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(private_pem.encode(), password=None)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return public.decode()


def _freshworks(env: Mapping[str, str], keys: Mapping[str, str]) -> Portal:
    # Freshworks' implicit flow, as its portal starts it (its redirect_uri, state and nonce shapes).
    client_id = env["FRESHWORKS_CLIENT_ID"]
    host = _first(env["FRESHWORKS_REDIRECT_HOSTS"])
    sent = {
        "response_type": "id_token",
        "client_id": client_id,
        "scope": "openid email profile",
        # Base64 (with + / =) of its host, a digest and the nonce.
        "state": "YWNtZS5mcmVzaHdvcmtzLmNvbTtBVHkxSERKd2tjenZzempEU3haMStvbWVl"
        "YWlPa2lZTEZ5dUVtU2ZYUVZNPTt4YjJDZTVBR1NER2hXWVFJ==",
        "redirect_uri": f"https://{host}/sp/OIDC/100000000000000001/implicit",
        "nonce": "xb2Ce5AGSDGhWYQI",
    }
    public = _public_pem(keys["freshworks"])

    def read(values: Mapping[str, str]) -> dict[str, Any]:
        claims: dict[str, Any] = jwt.decode(
            values["id_token"], public, algorithms=["RS256"], audience=client_id, options={"verify_exp": False}
        )
        return claims

    return Portal(
        "freshworks",
        params=tuple(sent),
        build=_plain(sent),
        hosts=_hosts(env["FRESHWORKS_REDIRECT_HOSTS"], env.get("FRESHWORKS_PORTAL_URL", "")),
        credentials=("id_token",),
        read=read,
        destination="redirect_uri",
        hands_off=True,
    )


PORTALS: dict[str, Callable[[Mapping[str, str], Mapping[str, str]], Portal]] = {
    "clickfunnels": _clickfunnels,
    "kustomer": _kustomer,
    "happyfox": _happyfox,
    "zendesk": _zendesk,
    "canny": _canny,
    "discourse": _discourse,
    "freshworks": _freshworks,
}
