"""Environment variables, parsed and checked once per container.

Each reader raises ``ConfigurationError`` naming the variable, so a bad deployment fails at cold start
with a message the operator can act on, instead of a half-working bridge.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import ConfigurationError, RedirectNotAllowed
from .redirects import allowed_url

__all__ = [
    "INTERACTIVE_TTL_DEFAULT",
    "INTERACTIVE_TTL_MAX",
    "LINK_TTL_DEFAULT",
    "LINK_TTL_MAX",
    "LOCAL_HOSTS",
    "OIDC_CLIENT_AUTH_METHODS",
    "REFERRER_POLICIES",
    "Brand",
    "CommonSettings",
    "OidcSettings",
    "env_bool",
    "env_display_name",
    "env_hostname",
    "env_hostnames",
    "env_int",
    "env_origin",
    "env_page_url",
    "env_referrer_policy",
    "env_str",
    "env_url",
]

_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$")
# The only hosts plain http is allowed for (the local stack, a local OpenID provider).
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1"})

REFERRER_POLICIES = frozenset(
    {
        "no-referrer",
        "no-referrer-when-downgrade",
        "origin",
        "origin-when-cross-origin",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
    }
)


def env_str(env: Mapping[str, str], name: str, default: str | None = None) -> str:
    value = env.get(name, "").strip()
    if value:
        return value
    if default is None:
        raise ConfigurationError(f"{name} is required but not set")
    return default


def env_bool(env: Mapping[str, str], name: str) -> bool:
    """``true`` or ``false`` (any case); unset or empty is false."""
    raw = env.get(name, "").strip().lower()
    if raw not in ("", "true", "false"):
        raise ConfigurationError(f"{name} must be true or false, got {raw!r}")
    return raw == "true"


def env_int(env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from exc
    if not minimum <= value <= maximum:
        raise ConfigurationError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def _hostname(name: str, raw: str) -> str:
    host = raw.strip().lower()
    # ASCII before lower-casing, too: the Kelvin sign lower-cases to an ASCII "k".
    if not raw.isascii() or not _HOSTNAME.match(host):
        raise ConfigurationError(f"{name} must hold bare host names like portal.example.com, got {raw!r}")
    return host


def env_hostname(env: Mapping[str, str], name: str) -> str:
    return _hostname(name, env_str(env, name))


def env_hostnames(env: Mapping[str, str], name: str) -> frozenset[str]:
    """A comma-separated list of exact host names; empty when unset."""
    return frozenset(_hostname(name, part) for part in env.get(name, "").split(",") if part.strip())


def env_url(env: Mapping[str, str], name: str, default: str | None = None) -> str:
    """An absolute https URL (plain http only for localhost, for the local stack)."""
    raw = env_str(env, name, default)
    parts = urlsplit(raw)
    local = parts.scheme == "http" and parts.hostname in LOCAL_HOSTS
    if not (parts.scheme == "https" or local) or not parts.hostname or "@" in parts.netloc:
        raise ConfigurationError(f"{name} must be an absolute https:// URL, got {raw!r}")
    return raw


def env_origin(env: Mapping[str, str], name: str, *, example: str) -> str:
    """``https://host`` of a portal (its own host or a custom domain), nothing after it: where the bridge sends
    users, so it passes the check every redirect target passes (https, exact host, default port, no userinfo)."""
    raw = env_str(env, name).rstrip("/")
    parts = urlsplit(raw)
    problem = f"{name} must be an https origin like {example}, without a path, got {raw!r}"
    if parts.path or parts.query or parts.fragment or raw.endswith(("?", "#")):
        raise ConfigurationError(problem)
    host = (parts.hostname or "").lower()
    try:
        allowed_url(f"{raw}/", {host})
    except RedirectNotAllowed as exc:
        raise ConfigurationError(problem) from exc
    return f"https://{host}"


def env_display_name(env: Mapping[str, str], name: str, default: str) -> str:
    """Text shown to users on our pages: one short line of printable characters."""
    value = env_str(env, name, default)
    if len(value) > 80 or not value.isprintable():
        raise ConfigurationError(f"{name} must be one line of at most 80 printable characters, got {value!r}")
    return value


# Characters a URL shown on our pages (and, by its origin, named in their Content-Security-Policy) may hold:
# printable ASCII without blanks, quotes, angle brackets, backslash or ';' (which would end a CSP directive).
_PAGE_URL = re.compile(r"[!#$%&()*+,\-./0-9:=?@A-Z\[\]^_a-z{|}~]+", re.ASCII)
_PORT = re.compile(r"[0-9]{1,5}", re.ASCII)


def env_page_url(env: Mapping[str, str], name: str) -> str | None:
    """An https URL the pages link to or load (plain http only for localhost, as ``env_url``); None when unset.

    Stricter than ``env_url``: its host must be a host name and its characters plain, because its origin is
    written into a Content-Security-Policy header and the URL into the page.
    """
    if not env.get(name, "").strip():
        return None
    raw = env_url(env, name)
    parts = urlsplit(raw)
    host, _, port = parts.netloc.partition(":")
    host_ok = host in LOCAL_HOSTS or _HOSTNAME.match(host.lower()) is not None
    if not _PAGE_URL.fullmatch(raw) or not host_ok or (port and not _PORT.fullmatch(port)):
        raise ConfigurationError(
            f"{name} must be an https:// URL on a plain host name (like https://www.example.com/help), got {raw!r}"
        )
    return raw


def env_referrer_policy(env: Mapping[str, str], name: str) -> str:
    policy = env_str(env, name, "no-referrer").lower()
    if policy not in REFERRER_POLICIES:
        raise ConfigurationError(f"{name} must be one of {', '.join(sorted(REFERRER_POLICIES))}, got {policy!r}")
    return policy


OIDC_CLIENT_AUTH_METHODS = frozenset({"client_secret_basic", "client_secret_post"})
_SCOPE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")  # RFC 6749 §3.3 scope-token
# Where the OIDC layer puts cryptography and joserfc: beside /opt/python, not in it (see sso_bridge.id_token).
OIDC_PACKAGES_DEFAULT = "/opt/oidc-packages"


@dataclass(frozen=True, slots=True)
class OidcSettings:
    """The company's OpenID provider: who it is, how the bridge authenticates to it, whose email it may pass on."""

    issuer: str
    client_id: str | None  # None: read from the client secret (JSON), as the template's own Cognito stores it
    client_secret_id: str
    scopes: str
    allowed_email_domains: frozenset[str]
    client_auth: str
    logout: bool
    packages_path: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OidcSettings | None:
        """``None`` when ``OIDC_ISSUER`` is unset: sign-in goes to the platform only."""
        if not env.get("OIDC_ISSUER", "").strip():
            return None
        issuer = env_url(env, "OIDC_ISSUER")
        if urlsplit(issuer).query or urlsplit(issuer).fragment:
            raise ConfigurationError(f"OIDC_ISSUER must have no query or fragment, got {issuer!r}")
        scopes = env_str(env, "OIDC_SCOPES", "openid email profile").split()
        if "openid" not in scopes or not all(_SCOPE.match(scope) for scope in scopes):
            raise ConfigurationError(f"OIDC_SCOPES must be space-separated scopes including openid, got {scopes!r}")
        auth = env_str(env, "OIDC_CLIENT_AUTH", "client_secret_basic")
        if auth not in OIDC_CLIENT_AUTH_METHODS:
            raise ConfigurationError(f"OIDC_CLIENT_AUTH must be one of {', '.join(sorted(OIDC_CLIENT_AUTH_METHODS))}")
        client_id = env.get("OIDC_CLIENT_ID", "").strip() or None
        if client_id is not None and (len(client_id) > 255 or not client_id.isprintable()):
            raise ConfigurationError("OIDC_CLIENT_ID must be one line of printable characters")
        return cls(
            issuer=issuer,
            client_id=client_id,
            client_secret_id=env_str(env, "OIDC_CLIENT_SECRET_ID"),
            scopes=" ".join(dict.fromkeys(scopes)),
            allowed_email_domains=env_hostnames(env, "OIDC_ALLOWED_EMAIL_DOMAINS"),
            client_auth=auth,
            logout=env_bool(env, "OIDC_LOGOUT"),
            packages_path=env_str(env, "OIDC_PACKAGES_PATH", OIDC_PACKAGES_DEFAULT),
        )


_BRAND_COLOR = re.compile(r"#[0-9a-f]{6}", re.ASCII)


@dataclass(frozen=True, slots=True)
class Brand:
    """The company's brand on every page the bridge shows (``sso_bridge.pages``); each part optional.

    A reader of a marketing email meets the link's confirmation page first: unbranded, it looks like phishing.
    The colour is validated here, never written into CSS unchecked; the logo's origin is the only one the
    pages may load images from.
    """

    name: str | None = None  # BRAND_NAME: one line, at most 80 printable characters
    logo_url: str | None = None  # BRAND_LOGO_URL
    color: str | None = None  # BRAND_COLOR: #rrggbb, lower-cased
    support_url: str | None = None  # SUPPORT_URL: offered on every page

    @property
    def logo_origin(self) -> str | None:
        """``scheme://host[:port]`` of the logo, for the pages' ``img-src``."""
        if self.logo_url is None:
            return None
        parts = urlsplit(self.logo_url)
        return f"{parts.scheme}://{parts.netloc.lower()}"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Brand:
        color = env.get("BRAND_COLOR", "").strip().lower() or None
        if color is not None and not _BRAND_COLOR.fullmatch(color):
            raise ConfigurationError(f"BRAND_COLOR must be a colour as #rrggbb (like #0a7d4f), got {color!r}")
        return cls(
            name=env_display_name(env, "BRAND_NAME", "") or None,
            logo_url=env_page_url(env, "BRAND_LOGO_URL"),
            color=color,
            support_url=env_page_url(env, "SUPPORT_URL"),
        )


# Interactive tokens go straight from the platform to the browser: minutes. Links wait in inboxes: days.
INTERACTIVE_TTL_DEFAULT, INTERACTIVE_TTL_MAX = 300, 3600
LINK_TTL_DEFAULT, LINK_TTL_MAX = 7 * 86400, 30 * 86400


@dataclass(frozen=True, slots=True)
class CommonSettings:
    """What every flow needs: who the user is, where to send them to sign in, how redirects and links behave."""

    login_token_secret_id: str
    login_token_max_ttl: int
    link_token_max_ttl: int
    login_token_leeway: int
    platform_login_url: str | None  # None: sign-in at the OpenID provider only
    secrets_max_age: int
    secrets_max_stale: int
    login_token_previous_key_grace: int
    referrer_policy: str
    nbf_backdate: int
    spent_links_table: str
    link_revocations_table: str
    portal_name: str
    trace_subsegments: bool
    oidc: OidcSettings | None = None
    public_host: str | None = None  # None: URLs on the host the event names (sso_bridge.request.public_origin)
    brand: Brand = Brand()
    platform_home_url: str | None = None  # PLATFORM_HOME_URL

    @property
    def home_url(self) -> str | None:
        """Where the pages lead back to the platform: ``PLATFORM_HOME_URL``, else ``PLATFORM_LOGIN_URL``'s origin."""
        if self.platform_home_url is not None:
            return self.platform_home_url
        if self.platform_login_url is None:
            return None
        parts = urlsplit(self.platform_login_url)
        return f"{parts.scheme}://{parts.netloc}/"

    # Where a portal's remote logout sends the user (PLATFORM_LOGOUT_URL); None: the bridge's signed-out page.
    platform_logout_url: str | None = None

    def vendor_secret_id(self, env: Mapping[str, str], name: str) -> str:
        """The secret id in ``name``, holding the vendor's own key: never the login-token key, or the bridge would
        hand out vendor tokens signed with the key that vouches for users."""
        secret_id = env_str(env, name)
        if secret_id == self.login_token_secret_id:
            raise ConfigurationError(f"{name} must not be the login-token secret")
        return secret_id

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, portal_name: str = "the portal") -> CommonSettings:
        """``portal_name`` is the flow's default for ``PORTAL_NAME`` (shown on the email-link page)."""
        link_token_max_ttl = env_int(env, "LINK_TOKEN_MAX_TTL", LINK_TTL_DEFAULT, minimum=300, maximum=LINK_TTL_MAX)
        oidc = OidcSettings.from_env(env)
        # Someone must be able to sign a user in: the platform, the OpenID provider, or both.
        platform_set = bool(env.get("PLATFORM_LOGIN_URL", "").strip())
        if not platform_set and oidc is None:
            raise ConfigurationError("PLATFORM_LOGIN_URL or OIDC_ISSUER is required: set one or both")
        return cls(
            login_token_secret_id=env_str(env, "LOGIN_TOKEN_SECRET_ID"),
            login_token_max_ttl=env_int(
                env, "LOGIN_TOKEN_MAX_TTL", INTERACTIVE_TTL_DEFAULT, minimum=30, maximum=INTERACTIVE_TTL_MAX
            ),
            link_token_max_ttl=link_token_max_ttl,
            login_token_leeway=env_int(env, "LOGIN_TOKEN_LEEWAY", 30, minimum=0, maximum=300),
            platform_login_url=env_url(env, "PLATFORM_LOGIN_URL") if platform_set else None,
            secrets_max_age=env_int(env, "SECRETS_MAX_AGE", 300, minimum=0, maximum=86400),
            # How long a cached key keeps serving past its age while Secrets Manager fails.
            secrets_max_stale=env_int(env, "SECRETS_MAX_STALE", 900, minimum=0, maximum=86400),
            # Links signed just before a rotation live this long: by default the previous key lives as long.
            login_token_previous_key_grace=env_int(
                env, "LOGIN_TOKEN_PREVIOUS_KEY_GRACE", link_token_max_ttl, minimum=0, maximum=LINK_TTL_MAX
            ),
            referrer_policy=env_referrer_policy(env, "REFERRER_POLICY"),
            nbf_backdate=env_int(env, "NBF_BACKDATE_SECONDS", 30, minimum=0, maximum=300),
            spent_links_table=env_str(env, "SPENT_LINKS_TABLE_NAME"),
            link_revocations_table=env_str(env, "LINK_REVOCATIONS_TABLE_NAME"),
            portal_name=env_display_name(env, "PORTAL_NAME", portal_name),
            trace_subsegments=env_bool(env, "TRACE_SUBSEGMENTS"),
            oidc=oidc,
            # The host browsers use for the HTTP API (a custom domain, CloudFront); empty: the event's own.
            public_host=env_hostname(env, "PUBLIC_HOST") if env.get("PUBLIC_HOST", "").strip() else None,
            brand=Brand.from_env(env),
            platform_home_url=env_page_url(env, "PLATFORM_HOME_URL"),
            platform_logout_url=env_url(env, "PLATFORM_LOGOUT_URL")
            if env.get("PLATFORM_LOGOUT_URL", "").strip()
            else None,
        )
