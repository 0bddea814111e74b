"""Canny SSO redirect: a feedback-board visitor comes back to the board signed in.

Canny's contract (help.canny.io "Setting up a single sign-on (SSO) redirect"; developers.canny.io's SSO token page):
Canny sends a visitor who clicks "Log in" to our login URL with ``companyID`` and ``redirect``; we send them to
``https://canny.io/api/redirects/sso?companyID=...&ssoToken=...&redirect=...`` with both passed back. The
``ssoToken`` is an HS256 JWT signed with the company's SSO private key, of ``email``, ``id``, ``name`` and the
optional ``avatarURL``. Canny honours an ``exp`` when the token has one (help.canny.io "Single Sign-On (SSO)"),
so ours has a short one: the token travels in a URL (browser history, proxies) and is otherwise good forever.

Canny does not sign what it sends, so both parameters are checked here, before the sign-in round trip:
``companyID`` must be ours exactly and ``redirect`` an https URL on the board's hosts. Without either (an email
link, or the platform sending the user straight in) the user lands on ``CANNY_PORTAL_URL``: Canny needs no
nonce from us, so the bridge can answer Canny's redirect itself.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import jwt

from sso_bridge.entry import lambda_entry
from sso_bridge.errors import BadRequest, BridgeError, ConfigurationError
from sso_bridge.flow import SIGN_IN_METHODS, SignIn, new_app
from sso_bridge.http import Response
from sso_bridge.i18n import N_
from sso_bridge.login_token import LoginIdentity, email_key
from sso_bridge.observability import Logger, Metrics
from sso_bridge.redirects import MAX_URL_LENGTH, allowed_url
from sso_bridge.request import Query
from sso_bridge.settings import CommonSettings, env_hostnames, env_str, env_url

AUDIENCE = "canny"
# TRANSLATORS: a portal's name (see "the portal").
PORTAL_NAME = N_("the feedback board")
# Canny's SSO endpoint; the host is Canny's own whatever the board's domain is.
SSO_URL = "https://canny.io/api/redirects/sso"
# Canny honours exp but names no window: the redirect is followed at once, so a few minutes covers clock skew.
TOKEN_TTL_SECONDS = 300
# Canny's company ids are 24 hex digits; anything plain and short is accepted, so a new format still works.
_COMPANY_ID = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
MAX_COMPANY_ID_LENGTH = 64


class RequestIncomplete(BadRequest):
    """Canny sends ``companyID`` and ``redirect`` together; one alone, or neither without ``CANNY_PORTAL_URL``,
    leaves no board to send the visitor to. Signing in would not help, so it is refused before the round trip."""

    reason = "canny_request_incomplete"
    title = N_("This sign-in link is incomplete")
    message = N_(
        "The link does not say which feedback board to return you to. "
        "Please start again from the feedback board's Log in button."
    )


class UnknownCompany(BadRequest):
    """A ``companyID`` that is not ours: Canny would refuse our token for it, and whoever sent it chose the board."""

    reason = "canny_company_mismatch"
    title = N_("This sign-in is for another feedback board")
    message = N_(
        "The feedback board that sent you here is not the one this sign-in serves. "
        "Please start again from the feedback board's Log in button."
    )


@dataclass(frozen=True, slots=True)
class Settings:
    common: CommonSettings
    company_id: str
    secret_id: str
    redirect_hosts: frozenset[str]
    portal_url: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        common = CommonSettings.from_env(env, portal_name=PORTAL_NAME)
        company_id = env_str(env, "CANNY_COMPANY_ID")
        if not _COMPANY_ID.fullmatch(company_id):
            raise ConfigurationError(
                f"CANNY_COMPANY_ID must be the company id Canny sends (letters and digits), got {company_id!r}"
            )
        hosts = env_hostnames(env, "CANNY_REDIRECT_HOSTS")
        portal_url = None
        if env.get("CANNY_PORTAL_URL", "").strip():
            raw = env_url(env, "CANNY_PORTAL_URL")
            # The board is an allowed destination by definition; it must pass the same check as any other.
            hosts |= {(urlsplit(raw).hostname or "").lower()}
            try:
                portal_url = allowed_url(raw, hosts)
            except BridgeError as exc:
                raise ConfigurationError(f"CANNY_PORTAL_URL must be a plain https:// URL, got {raw!r}") from exc
        if not hosts:
            raise ConfigurationError("CANNY_REDIRECT_HOSTS must name the board's host (yourcompany.canny.io)")
        secret_id = common.vendor_secret_id(env, "CANNY_SECRET_ID")
        return cls(
            common=common, company_id=company_id, secret_id=secret_id, redirect_hosts=hosts, portal_url=portal_url
        )


# Read once per container; a bad variable stops the cold start with its name.
settings = Settings.from_env(os.environ)

app = new_app()
logger = Logger()
metrics = Metrics()
flow = SignIn(app, settings=settings.common, audience=AUDIENCE, logger=logger, metrics=metrics)


def display_name(user: LoginIdentity) -> str:
    """Canny's sample sends a name with every token; without one, the given and family names, else the email's
    local part (never empty)."""
    if user.name:
        return user.name
    parts = [part for part in (user.profile.given_name, user.profile.family_name) if part]
    return " ".join(parts) or user.email.rsplit("@", 1)[0]


def mint_token(user: LoginIdentity, key: str, *, now: int) -> str:
    # id: Canny keys its users on it, so it must not change; the platform's sub when it sends one, else the email in
    # the one form the bridge keys addresses by (the same id whatever capitalisation the next token has).
    claims: dict[str, Any] = {
        "email": user.email,
        "id": user.profile.subject or email_key(user.email),
        "name": display_name(user),
        # iat as node's jsonwebtoken (Canny's own sample) adds it; exp: see the module docstring.
        "iat": now,
        "exp": now + TOKEN_TTL_SECONDS,
    }
    avatar = user.profile.avatar_url
    if avatar and avatar.startswith("https://"):  # an image every visitor's browser loads: https only
        claims["avatarURL"] = avatar
    return jwt.encode(claims, key, algorithm="HS256")


def sso_location(token: str, target: str) -> str:
    """Canny's SSO endpoint with its three parameters, each a whole encoded value."""
    company = quote(settings.company_id, safe="")
    return f"{SSO_URL}?companyID={company}&ssoToken={quote(token, safe='')}&redirect={quote(target, safe='')}"


def destination(query: Query) -> str:
    """Where Canny should take the visitor once signed in; refused before anyone signs in when not ours."""
    company = query.get("companyID", max_length=MAX_COMPANY_ID_LENGTH)
    raw_target = query.get("redirect", max_length=MAX_URL_LENGTH)
    if company is None and raw_target is None:
        if settings.portal_url is None:
            raise RequestIncomplete("canny_portal_url_unset")
        return settings.portal_url
    if company is None or raw_target is None:
        raise RequestIncomplete(detail="companyID" if company is None else "redirect")
    if company != settings.company_id:
        # Not a secret (it is in every Canny login URL): logged when plain, to tell a wrong CANNY_COMPANY_ID.
        raise UnknownCompany(detail=company if _COMPANY_ID.fullmatch(company) else "unexpected characters")
    return allowed_url(raw_target, settings.redirect_hosts)


@app.route("/canny/login", method=SIGN_IN_METHODS)
@app.route("/", method=SIGN_IN_METHODS)
def login() -> Response:
    query = Query(app.current_event.raw_query_string)
    target = destination(query)
    user = flow.identify(query)

    key = flow.vendor_key(settings.secret_id)
    token = mint_token(user, key, now=int(time.time()))
    flow.issued(user)
    return flow.redirect(sso_location(token, target))


lambda_handler = lambda_entry(app, logger=logger, metrics=metrics, trace_subsegments=settings.common.trace_subsegments)
