"""ClickFunnels' customer center, played locally (vendor-docs/clickfunnels-sso.txt)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from html import escape

from local.server import App, Reply, Request
from local.vendors.operations import HostSetting, LinkRules
from local.vendors.portal import Portal, hosts_of, hs256_reader, plain_query
from local.vendors.site import (
    Refused,
    Site,
    StandInSpec,
    check_exp_nbf,
    check_iat,
    decode,
    param,
    query,
    signed_in,
    site_app,
    text,
)

__all__ = ["SPEC", "clickfunnels"]

# ClickFunnels names no tolerance and its sample sets iat = nbf = now, so none (the bridge backdates nbf for it).
_CLICKFUNNELS_SKEW_SECONDS = 0


def clickfunnels(*, workspace_domain: str, key: str) -> App:
    """ClickFunnels' customer center at ``https://{workspace_domain}``: ``GET /sso`` signs a contact in.

    Its docs: ``identifier`` (the email), ``strategy=email`` and ``token``, an HS256 JWT of ``sub`` =
    ``EMAIL:WORKSPACE_DOMAIN``, ``nbf``, ``exp``, ``iat`` (all required) and optionally ``redirect_to``.
    """
    site = Site("ClickFunnels", "Customer center", workspace_domain)

    def home(request: Request) -> Reply:
        return site.page(200, "Customer center (local stand-in)", "<p>Sign in through your platform's link.</p>")

    def sso(request: Request) -> Reply:
        params = query(request)
        identifier = param(params, "identifier")
        strategy = param(params, "strategy")
        token = param(params, "token")
        if strategy != "email":
            raise Refused(401, "The sign-in strategy must be email.")
        claims = decode(token, key, ["sub", "nbf", "exp", "iat"])
        now = time.time()
        check_exp_nbf(claims, now, _CLICKFUNNELS_SKEW_SECONDS, expired="The token has expired.")
        check_iat(claims, now, _CLICKFUNNELS_SKEW_SECONDS)
        # Exact: the identifier as the query carried it, and this workspace's domain (a custom one with www.).
        if text(claims, "sub") != f"{identifier}:{workspace_domain}":
            raise Refused(401, "The token's subject is not this contact in this workspace.")
        details = ""
        if "redirect_to" in claims:
            redirect_to = text(claims, "redirect_to")
            details = f"<p>ClickFunnels would now take you to <code>{escape(redirect_to)}</code>.</p>"
        return signed_in(site, identifier, details, claims)

    return site_app(site, {"/": home, "/sso": sso})


def _portal(env: Mapping[str, str], key: str) -> Portal:
    """The platform links straight to the route; a deep link rides in ``redirect_to`` (or the login token)."""
    return Portal(
        "clickfunnels",
        params=("redirect_to",),
        build=plain_query({}),
        hosts=hosts_of(env["CLICKFUNNELS_WORKSPACE_DOMAIN"], env.get("CLICKFUNNELS_REDIRECT_HOSTS", "")),
        credentials=("token",),
        read=hs256_reader("token", key),
        destination="redirect_to",
        email_of=lambda claims: str(claims["sub"]).rsplit(":", 1)[0],  # sub: email:workspace domain
    )


SPEC = StandInSpec(
    vendor="clickfunnels",
    title="ClickFunnels customer center",
    host_setting="CLICKFUNNELS_WORKSPACE_DOMAIN",  # a bare host
    secret_setting="CLICKFUNNELS_SECRET_ID",  # noqa: S106 - a variable's name, not a secret
    seed_var="CLICKFUNNELS_JWT_SECRET",
    login_path="/clickfunnels/sso",
    entry="/",
    defaults={"CLICKFUNNELS_WORKSPACE_DOMAIN": "yourworkspace.myclickfunnels.com"},
    make=lambda context: clickfunnels(workspace_domain=context.host, key=context.key),
    # A link's destination is the token's redirect_to claim: on the workspace or CLICKFUNNELS_REDIRECT_HOSTS.
    links=LinkRules(
        hosts=(
            HostSetting("CLICKFUNNELS_WORKSPACE_DOMAIN", "host"),
            HostSetting("CLICKFUNNELS_REDIRECT_HOSTS", "hosts"),
        )
    ),
    portal=_portal,
)
