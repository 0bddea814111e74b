"""ClickFunnels customer center SSO: a signed-in platform user lands in the customer center.

ClickFunnels' contract (vendor-docs/clickfunnels-sso.txt): an HS256 JWT with ``sub`` =
``EMAIL:WORKSPACE_DOMAIN``, ``nbf``, ``exp``, ``iat`` and optionally ``redirect_to``, sent to
``https://WORKSPACE_DOMAIN/sso?identifier=<email>&strategy=email&token=<jwt>``. Once a custom domain is
connected, SSO works only on it (with ``www.``), so ``CLICKFUNNELS_WORKSPACE_DOMAIN`` is that domain.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jwt

from sso_bridge.entry import lambda_entry
from sso_bridge.flow import SIGN_IN_METHODS, SignIn, new_app
from sso_bridge.http import Response
from sso_bridge.observability import Logger, Metrics
from sso_bridge.redirects import MAX_URL_LENGTH, allowed_url
from sso_bridge.request import Query
from sso_bridge.settings import CommonSettings, env_hostname, env_hostnames, env_int

AUDIENCE = "clickfunnels"


@dataclass(frozen=True, slots=True)
class Settings:
    common: CommonSettings
    workspace_domain: str
    secret_id: str
    token_ttl: int
    redirect_hosts: frozenset[str]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        domain = env_hostname(env, "CLICKFUNNELS_WORKSPACE_DOMAIN")
        common = CommonSettings.from_env(env, portal_name="the customer center")
        return cls(
            common=common,
            workspace_domain=domain,
            secret_id=common.vendor_secret_id(env, "CLICKFUNNELS_SECRET_ID"),
            token_ttl=env_int(env, "CLICKFUNNELS_TOKEN_TTL", 300, minimum=30, maximum=3600),
            redirect_hosts=env_hostnames(env, "CLICKFUNNELS_REDIRECT_HOSTS") | {domain},
        )


# Read once per container; a bad variable stops the cold start with its name.
settings = Settings.from_env(os.environ)

app = new_app()
logger = Logger()
metrics = Metrics()
# A link's redirect_to comes back through sign-in as the route's redirect_to parameter (checked the same way).
flow = SignIn(
    app,
    settings=settings.common,
    audience=AUDIENCE,
    logger=logger,
    metrics=metrics,
    deep_link_param="redirect_to",
    deep_link_hosts=settings.redirect_hosts,
)


def mint_token(email: str, key: str, *, redirect_to: str | None, now: int) -> str:
    # nbf is backdated a little: ClickFunnels refuses "not yet valid" tokens when its clock is behind ours.
    claims: dict[str, Any] = {
        "sub": f"{email}:{settings.workspace_domain}",
        "iat": now,
        "nbf": now - settings.common.nbf_backdate,
        "exp": now + settings.token_ttl,
    }
    if redirect_to:
        claims["redirect_to"] = redirect_to
    return jwt.encode(claims, key, algorithm="HS256")


@app.route("/clickfunnels/sso", method=SIGN_IN_METHODS)
@app.route("/", method=SIGN_IN_METHODS)
def sso() -> Response:
    query = Query(app.current_event.raw_query_string)
    # Check a deep link before the sign-in round trip, so a bad one fails before the user types anything.
    link_target = query.get("redirect_to", max_length=MAX_URL_LENGTH)
    if link_target:
        link_target = allowed_url(link_target, settings.redirect_hosts)
    user = flow.identify(query)
    # The platform's signed claim outranks the link's parameter.
    redirect_to = allowed_url(user.redirect_to, settings.redirect_hosts) if user.redirect_to else link_target

    key = flow.vendor_key(settings.secret_id)
    token = mint_token(user.email, key, redirect_to=redirect_to, now=int(time.time()))
    flow.issued(user)
    location = (
        f"https://{settings.workspace_domain}/sso?identifier={quote(user.email, safe='')}&strategy=email&token={token}"
    )
    return flow.redirect(location)


lambda_handler = lambda_entry(app, logger=logger, metrics=metrics, trace_subsegments=settings.common.trace_subsegments)
