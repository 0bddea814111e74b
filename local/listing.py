"""What to open: the index page and the banner `make run` prints list the same links (``Listing``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from local.config import Config, local_url
from local.console import note
from local.demo_platform import LOGIN_PATH, DemoPlatform
from local.identity_provider import ACCOUNTS, CALLBACK_PATH
from local.lambdas import LocalFunction
from local.pages import Link, Section, index_page
from local.plan import StackPlan
from local.server import Reply, Request
from local.standins import StandIn, kustomer_brands
from local.vendors import spec_for_secret

if TYPE_CHECKING:
    from local.aws import LocalSecret

__all__ = ["Listing", "banner", "discovery_url", "local_pages", "make_listing"]


def _route_links(loaded: Sequence[LocalFunction], effective: Sequence[Mapping[str, str]], port: int) -> list[Link]:
    links: list[Link] = []
    for function, env in zip(loaded, effective, strict=True):
        brands = [brand.name for brand in kustomer_brands(env) if brand.name]
        # The OpenID provider's way back is no page to open: it needs the provider's code and the browser's cookie.
        routes = [r for r in function.spec.routes if r.method in ("GET", "ANY") and r.path != CALLBACK_PATH]
        paths = dict.fromkeys(r.path for r in routes)
        for path in paths:
            if "{brand}" in path and brands:
                links += [(local_url(port, path.replace("{brand}", b)), f"{function.name}, brand {b}") for b in brands]
            elif "{brand}" in path:
                links.append((local_url(port, path), f"{function.name}: no brand configured (KUSTOMER_BRANDS)"))
            else:
                links.append((local_url(port, path), function.name))
    return links


@dataclass(frozen=True)
class Listing:
    sections: list[Section]
    notes: list[str]


def discovery_url(issuer: str) -> str:
    return f"{issuer.rstrip('/')}/.well-known/openid-configuration"


_ANY_OTHER_LOGIN = "any password; any other login is that email (@example.com added when bare), verified"


def _verdict(verified: bool) -> str:
    return "verified: signed in" if verified else "NOT verified: refused with a 403"


def _account_lines() -> list[str]:
    """Who can sign in at the local provider, and what the bridge makes of each (see local.identity_provider)."""
    width = max(len(account.login) for account in ACCOUNTS) + 2
    lines = [
        f"log in as {account.login.ljust(width)}{account.email}, email {_verdict(account.email_verified)}"
        for account in ACCOUNTS
    ]
    return [*lines, _ANY_OTHER_LOGIN]


def _account_text() -> str:
    """The same as one sentence, for the index page."""
    accounts = [
        f"log in as {account.login} ({account.email}, email {_verdict(account.email_verified)})" for account in ACCOUNTS
    ]
    return "; ".join([*accounts, _ANY_OTHER_LOGIN])


def make_listing(
    config: Config,
    loaded: Sequence[LocalFunction],
    effective: Sequence[Mapping[str, str]],
    url_ports: Mapping[str, int],
    standins: Sequence[tuple[StandIn, int]],
    plan: StackPlan,
    oidc_note: str | None,
) -> Listing:
    sections = [
        Section("Sign-in links (HTTP API)", _route_links(loaded, effective, config.port)),
        Section(
            "Function URLs (email links)",
            [(local_url(url_ports[f.spec.logical_id]), f.name) for f in loaded if f.spec.logical_id in url_ports],
        ),
    ]
    if standins:
        note_text = (
            "Vendor hosts are served locally: the bridge's redirects to them land on these stand-ins, which check "
            "the vendor token as the vendor would. VENDOR_STANDINS=off sends them to the real vendors."
        )
        links = [(local_url(port, site.entry), site.label) for site, port in standins]
        sections.append(Section("Vendor stand-ins", links, note_text))
    notes = [f"AWS endpoint (moto), for aws --endpoint-url and boto3, not a web page: {config.aws_endpoint}"]
    provider, issuer = plan.provider, plan.oidc_issuer
    if provider is not None:
        note_text = (
            f"Signed-out users sign in here (panva's oidc-provider, on this machine): {_account_text()}. "
            "OIDC=off sends them to the demo platform instead."
        )
        link = (discovery_url(provider.issuer), f"the local OpenID provider {provider.issuer} (discovery document)")
        sections.append(Section("OpenID provider (sign-in)", [link], note_text))
    elif issuer:
        notes.insert(0, f"Signed-out users sign in at the OpenID provider (OIDC_ISSUER): {issuer}")
    if oidc_note:
        notes.insert(0, oidc_note)
    if config.platform_login_url is None:
        what = "demo platform sign-in" + (" (login tokens, beside OpenID Connect)" if issuer else "")
        sections.append(Section("Local", [(f"{config.base_url}{LOGIN_PATH}", what)]))
    else:
        notes.insert(0, f"Sign-in page (PLATFORM_LOGIN_URL): {config.platform_login_url}")
    return Listing(sections, notes)


def _generated_key(item: LocalSecret) -> str:
    """``VAR=value`` to export; an RSA key is many lines, so its variable and how to see its public half."""
    if item.kind != "rsa":
        return f"{item.seed_var}={item.value}"
    spec = spec_for_secret(item.env_var or "")
    vendor = spec.vendor if spec is not None else "freshworks"
    return (
        f"{item.seed_var}: a new RSA private key (PEM, not shown; "
        f"make vendor-public-key PROVIDER={vendor} LOCAL=1 prints its public key)"
    )


def banner(
    config: Config,
    listing: Listing,
    local_secrets: Sequence[LocalSecret],
    plan: StackPlan,
    oidc_note: str | None,
) -> str:
    lines = ["", "sso-bridge local stack", f"  AWS endpoint (moto): {config.aws_endpoint}  (not a web page)"]
    generated = [item for item in local_secrets if item.generated]
    if generated:
        lines.append("  Generated keys (set these variables to keep them across runs):")
        lines += [f"    {_generated_key(item)}" for item in generated]
    width = max((len(url) for section in listing.sections for url, _ in section.links), default=0) + 3
    for section in listing.sections:
        if section.title in ("Local", "OpenID provider (sign-in)"):
            continue
        heading = section.title
        if section.title == "Vendor stand-ins":
            heading += (
                " (open one, press Log in; vendor hosts are served locally; VENDOR_STANDINS=off for the real ones)"
            )
        lines.append(f"  {heading}:")
        # A templated path ({brand}) is no link to open: the index shows it as text, the banner not at all.
        lines += [f"    {url.ljust(width)}{what}" for url, what in section.links if "{" not in url]
    sign_in = config.platform_login_url or f"{config.base_url}{LOGIN_PATH}  (demo platform)"
    provider, issuer = plan.provider, plan.oidc_issuer
    if provider is not None:
        lines.append("  Sign-in: the local OpenID provider (OIDC=off for the demo platform instead)")
        lines += [f"    {discovery_url(provider.issuer)}"] + [f"    {line}" for line in _account_lines()]
        lines.append(f"  Login tokens work beside it: {sign_in}, make login-token")
    elif issuer:
        lines.append(f"  Sign-in: the OpenID provider {issuer} (OIDC_ISSUER)")
        lines.append(f"  Login tokens work beside it: {sign_in}, make login-token")
    else:
        lines.append(f"  Sign-in page: {sign_in}")
        if oidc_note:
            lines.append(f"  {oidc_note}")
    lines += [
        f"  Index: {config.base_url}/",
        "  One line per request below (LOCAL_LOGS=json adds the handlers' JSON). Ctrl-C to stop.",
        "",
    ]
    return "\n".join(lines)


def local_pages(listing: Listing, demo: DemoPlatform | None) -> Callable[[Request], Reply | None]:
    index = index_page(listing.sections, notes=listing.notes)

    def pages(request: Request) -> Reply | None:
        if demo is not None and (reply := demo(request)) is not None:
            outcome = "signed_in" if reply.status in (302, 303) else "form" if reply.status == 200 else "refused"
            note("demo_platform", outcome)
            return reply
        if request.path == "/" and request.method in ("GET", "HEAD"):
            note("index")
            return index
        return None

    return pages
