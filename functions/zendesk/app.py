"""Zendesk help center JWT single sign-on: Remote login URL in, the help center out, every token on record.

Zendesk's contract (support.zendesk.com "Enabling JWT single sign-on", article 4408845838874, and "Anatomy of a JWT
request", article 4408881965722; github.com/zendesk/zendesk_jwt_sso_examples): Zendesk sends a visitor who must
sign in to our Remote login URL with ``return_to`` (the page they wanted; also ``brand_id``, ``locale_id`` and
``timestamp``, which we do not need). We answer a signed-in user by posting ``jwt`` and ``return_to`` to
``{ZENDESK_ACCOUNT_URL}/access/jwt``. The token is HS256 with the account's shared secret, header ``typ: JWT``, of
``iat``, ``jti``, ``email`` and ``name``, plus ``external_id``, ``organization``, ``tags`` and ``locale_id`` when the
login token has them. Zendesk refuses an ``iat`` more than three minutes off its clock and a ``jti`` it has seen.

A POST, not a redirect: Zendesk recommends it and its examples moved to it when it deprecated GET /access/jwt; the
token then never sits in a URL, where browser history, proxies and access logs would keep it. The answer is a page
whose form the browser submits at once (``sso_bridge.responses.post_form_page``).

Never ``role``, ``custom_role_id`` or anything else that makes an agent: the bridge signs customers into the help
center, and a claim that promotes a user is not the platform's to make through here.

Every ``jti`` is recorded before the token is signed (``sso_bridge.jti_store``, as for HappyFox): no record, no
token, and a table outage is a 503. Zendesk's own refusals come back to the Remote logout URL as
``kind=error&message=...``: a page that quotes Zendesk's words as plain text and offers a way forward.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import jwt

from sso_bridge.entry import lambda_entry
from sso_bridge.flow import SIGN_IN_METHODS, SignIn, new_app
from sso_bridge.http import Response
from sso_bridge.i18n import N_
from sso_bridge.jti_store import SMOKE_EMAIL, IssueRecord, JtiStore
from sso_bridge.login_token import LoginIdentity, email_key, has_hidden_characters
from sso_bridge.observability import Logger, Metrics
from sso_bridge.pages import actions_html
from sso_bridge.redirects import MAX_URL_LENGTH, allowed_url
from sso_bridge.request import MAX_QUERY_LENGTH, Query, public_origin
from sso_bridge.responses import page_response, post_form_page
from sso_bridge.settings import CommonSettings, env_hostnames, env_origin

AUDIENCE = "zendesk"
LOGIN_PATH = "/zendesk/login"
LOGOUT_PATH = "/zendesk/logout"
# Zendesk refuses an iat more than 3 minutes off ("The supplied iat value is more than 3 minutes off"): the
# longest our token is of any use. Recorded as its expiry in the audit table.
TOKEN_WINDOW_SECONDS = 180
# The refusal Zendesk reports on the Remote logout URL, as counted and logged (its words are never logged).
SIGN_IN_ERROR = "zendesk_sign_in_error"
# What the logs say about Zendesk's message instead of its words (they may hold the user's email): the first
# fragment found, lower-cased, names the cause.
_CAUSES = (
    ("iat value", "clock"),
    ("iat parameter", "clock"),
    ("signature", "signature"),
    ("reused", "replay"),
    ("already been used", "replay"),
    ("jti", "replay"),
    ("not allowed to sign up", "sign_up_blocked"),
    ("email", "email"),
)


@dataclass(frozen=True, slots=True)
class Settings:
    common: CommonSettings
    account_url: str
    return_hosts: frozenset[str]  # where return_to may point: the account's host and ZENDESK_HOSTS
    secret_id: str

    @property
    def help_center_url(self) -> str:
        return f"{self.account_url}/hc/"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        common = CommonSettings.from_env(env, portal_name="the help center")
        account_url = env_origin(env, "ZENDESK_ACCOUNT_URL", example="https://acme.zendesk.com")
        secret_id = common.vendor_secret_id(env, "ZENDESK_SECRET_ID")
        return cls(
            common=common,
            account_url=account_url,
            return_hosts=env_hostnames(env, "ZENDESK_HOSTS") | {urlsplit(account_url).netloc},
            secret_id=secret_id,
        )


# Read once per container; a bad variable stops the cold start with its name.
settings = Settings.from_env(os.environ)
# No AWS call here: the store makes its client on the first token it records.
jti_store = JtiStore.from_env(os.environ)

app = new_app()
logger = Logger()
metrics = Metrics()
# An email link's signed destination comes back through sign-in as return_to (checked the same way).
flow = SignIn(
    app,
    settings=settings.common,
    audience=AUDIENCE,
    logger=logger,
    metrics=metrics,
    deep_link_param="return_to",
    deep_link_hosts=settings.return_hosts,
)


def display_name(user: LoginIdentity) -> str:
    """Zendesk requires a name; without one in the login token, the email's local part (never empty)."""
    return user.name or user.email.rsplit("@", 1)[0]


def token_claims(user: LoginIdentity, *, jti: str, name: str, now: int) -> dict[str, Any]:
    """Zendesk's four required claims, and the profile claims the platform sent; never a role."""
    claims: dict[str, Any] = {"iat": now, "jti": jti, "email": user.email, "name": name}
    profile = user.profile
    if profile.external_id:
        claims["external_id"] = profile.external_id
    if profile.organization:
        claims["organization"] = profile.organization
    if profile.tags:
        # A comma-separated string, as in Zendesk's own example; each tag is one word (sso_bridge.login_token).
        claims["tags"] = ",".join(profile.tags)
    if profile.locale_id is not None:
        claims["locale_id"] = profile.locale_id
    return claims


def mint_token(claims: Mapping[str, Any], key: str) -> str:
    # Zendesk refuses a header without typ or alg; PyJWT writes both, typ is named so nobody drops it.
    return jwt.encode(dict(claims), key, algorithm="HS256", headers={"typ": "JWT"})


@app.route(LOGIN_PATH, method=SIGN_IN_METHODS)
@app.route("/", method=SIGN_IN_METHODS)
def login() -> Response:
    query = Query(app.current_event.raw_query_string)
    # Checked before the sign-in round trip, so a hostile one fails before the user types anything. Without one
    # (an email link, the platform's own "Help center" link) Zendesk picks the page: its help center's home.
    # brand_id, locale_id and timestamp are not read: return_to names the brand's host already.
    return_to = query.get("return_to", max_length=MAX_URL_LENGTH)
    if return_to:
        return_to = allowed_url(return_to, settings.return_hosts)
    user = flow.identify(query)
    # The platform's signed destination outranks the query's.
    if user.redirect_to:
        return_to = allowed_url(user.redirect_to, settings.return_hosts)
    key = flow.vendor_key(settings.secret_id)

    now = int(time.time())
    name = display_name(user)
    event = app.current_event
    http = event.request_context.http
    record = IssueRecord(
        vendor=AUDIENCE,
        email=user.email,
        name=name,
        issued_at=now,
        expires_at=now + TOKEN_WINDOW_SECONDS,
        request_id=event.request_context.request_id,
        source_ip=http.get("sourceIp") or "",
        user_agent=http.get("userAgent") or event.headers.get("user-agent") or "",
        login_jti=user.jti,
        smoke=email_key(user.email) == SMOKE_EMAIL,
    )
    # Recorded before it is signed: a token without its audit record never exists.
    jti = jti_store.issue(record)
    token = mint_token(token_claims(user, jti=jti, name=name, now=now), key)
    flow.issued(user, jti=jti)

    fields = {"jwt": token, "return_to": return_to} if return_to else {"jwt": token}
    page = post_form_page(
        f"{settings.account_url}/access/jwt",
        fields,
        portal_name=settings.common.portal_name,
        request_id=event.request_context.request_id,
        context=flow.page_context(),
        referrer_policy=settings.common.referrer_policy,
        # Zendesk answers the POST with a redirect to return_to, which may be a host-mapped help center.
        redirect_origins=[f"https://{host}" for host in sorted(settings.return_hosts)],
    )
    return flow.finish(page)


def zendesk_words(message: str | None) -> str | None:
    """Zendesk's message, when it is fit to show as its words: no hidden characters (bidi tricks, line breaks),
    no web address (the text reached us in a link anyone can write, and a link in it would look like ours)."""
    if message is None:
        return None
    text = message.strip()
    lowered = text.lower()
    if not text or has_hidden_characters(text) or "://" in lowered or "www." in lowered:
        return None
    return text


def cause(message: str | None) -> str:
    lowered = (message or "").lower()
    return next((name for fragment, name in _CAUSES if fragment in lowered), "other")


def sign_in_error(query: Query) -> Response:
    """Zendesk could not sign the user in and sent them to the Remote logout URL to say why."""
    message = query.get("message", max_length=MAX_QUERY_LENGTH)
    # Its words are not logged: they may name the user ("Users with the email address ... are not allowed").
    extra = {"outcome": "refused", "reason": SIGN_IN_ERROR, "cause": cause(message), "vendor": AUDIENCE}
    logger.warning("the help center refused a sign-in", extra=extra)
    metrics.count("Refused", reason=SIGN_IN_ERROR)

    event = app.current_event
    # The route's prefix (a named stage) is kept, so "Sign in again" reaches the login route of this same API.
    prefix = event.raw_path[: len(event.raw_path) - len(event.path)] if event.raw_path.endswith(event.path) else ""
    origin = public_origin(event, settings.common.public_host)
    again = f"{origin}{prefix}{LOGIN_PATH}?return_to={quote(settings.help_center_url, safe='')}"
    context = flow.page_context()
    portal = context.name(settings.common.portal_name)
    links = [(again, context.text(N_("Sign in again")))]
    home = context.home_link()
    if home is not None:
        links.append(home)
    links.append((settings.help_center_url, context.text(N_("Back to {portal}"), portal=portal)))
    return page_response(
        400,
        N_("Sign-in did not complete"),
        N_("Signing in to {portal} did not work. Please try again."),
        values={"portal": portal},
        quote=zendesk_words(message),
        request_id=event.request_context.request_id,
        action=actions_html(links),
        context=context,
    )


@app.get(LOGOUT_PATH)
def logout() -> Response:
    query = Query(app.current_event.raw_query_string)
    if query.get("kind", max_length=32) == "error":
        return sign_in_error(query)
    # Zendesk's own sign-out (its email, brand_id and return_to are not needed): the platform's, or a page.
    return flow.signed_out(portal_url=settings.help_center_url)


lambda_handler = lambda_entry(app, logger=logger, metrics=metrics, trace_subsegments=settings.common.trace_subsegments)
