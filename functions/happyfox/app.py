"""HappyFox support centre SSO: Remote Login and Remote Logout URLs.

HappyFox's contract (vendor-docs/happyfox-jwt-sso.txt): its support centre sends a visitor who clicks
"login" to our Remote Login URL and one who logs out to our Remote Logout URL. We answer a signed-in user
with a redirect to ``HAPPYFOX_ACCOUNT_URL/jwt/?token=<jwt>``, an HS256 JWT of ``iat``, ``jti``, ``name`` and
``email`` that HappyFox accepts for 120 seconds and checks ``jti`` against replay.

We treat ``jti`` as single use forever: each one is recorded in the jti table before the redirect leaves
(``sso_bridge.jti_store``), so a token we never recorded was never ours, and the record tells an auditor who
it was for and where the request came from. No record, no token: a table outage is a 503.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

import jwt

from sso_bridge.entry import lambda_entry
from sso_bridge.flow import SIGN_IN_METHODS, SignIn, new_app
from sso_bridge.http import Response
from sso_bridge.jti_store import SMOKE_EMAIL, IssueRecord, JtiStore
from sso_bridge.login_token import LoginIdentity, email_key
from sso_bridge.observability import Logger, Metrics
from sso_bridge.request import Query
from sso_bridge.settings import CommonSettings, env_origin

AUDIENCE = "happyfox"
# HappyFox's acceptance window for a token (its docs); recorded as the token's expiry in the audit table.
TOKEN_WINDOW_SECONDS = 120


@dataclass(frozen=True, slots=True)
class Settings:
    common: CommonSettings
    account_url: str
    secret_id: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        common = CommonSettings.from_env(env, portal_name="the support centre")
        return cls(
            common=common,
            account_url=env_origin(env, "HAPPYFOX_ACCOUNT_URL", example="https://acme.happyfox.com"),
            secret_id=common.vendor_secret_id(env, "HAPPYFOX_SECRET_ID"),
        )


# Read once per container; a bad variable stops the cold start with its name.
settings = Settings.from_env(os.environ)
# No AWS call here: the store makes its client on the first token it records.
jti_store = JtiStore.from_env(os.environ)

app = new_app()
logger = Logger()
metrics = Metrics()
flow = SignIn(app, settings=settings.common, audience=AUDIENCE, logger=logger, metrics=metrics)


def display_name(user: LoginIdentity) -> str:
    """HappyFox needs a name; without one in the login token, the email's local part (never empty)."""
    return user.name or user.email.rsplit("@", 1)[0]


def mint_token(*, jti: str, name: str, email: str, now: int, key: str) -> str:
    return jwt.encode({"iat": now, "jti": jti, "name": name, "email": email}, key, algorithm="HS256")


@app.route("/happyfox/login", method=SIGN_IN_METHODS)
@app.route("/", method=SIGN_IN_METHODS)
def login() -> Response:
    query = Query(app.current_event.raw_query_string)
    user = flow.identify(query)
    # HappyFox's JWT has no deep-link claim, so a login token's redirect_to has nowhere to go.
    key = flow.vendor_key(settings.secret_id)

    now = int(time.time())
    name = display_name(user)
    http = app.current_event.request_context.http
    record = IssueRecord(
        vendor=AUDIENCE,
        email=user.email,
        name=name,
        issued_at=now,
        expires_at=now + TOKEN_WINDOW_SECONDS,
        request_id=app.current_event.request_context.request_id,
        source_ip=http.get("sourceIp") or "",
        user_agent=http.get("userAgent") or app.current_event.headers.get("user-agent") or "",
        login_jti=user.jti,
        smoke=email_key(user.email) == SMOKE_EMAIL,
    )
    # Recorded before it is signed: a token without its audit record never exists.
    jti = jti_store.issue(record)
    token = mint_token(jti=jti, name=name, email=user.email, now=now, key=key)

    flow.issued(user, jti=jti)
    return flow.redirect(f"{settings.account_url}/jwt/?token={token}")


@app.get("/happyfox/logout")
def logout() -> Response:
    return flow.signed_out(portal_url=f"{settings.account_url}/")


lambda_handler = lambda_entry(app, logger=logger, metrics=metrics, trace_subsegments=settings.common.trace_subsegments)
