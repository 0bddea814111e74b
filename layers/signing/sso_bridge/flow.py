"""The part every vendor flow shares: who is the user, what an email link needs, what a refusal looks like.

Refusals are raised as ``BridgeError`` anywhere in a route and turned into a response here, once, so every
flow logs them the same way (one line, reason and outcome, never the token) and counts them per reason: every
refusal in ``Refused``, and the 503s (an outage, not the user's doing) in ``Unavailable`` too, so an alarm sums
one metric over every outage reason.

Email links are handled here too, so no vendor can forget a step. A safe method (GET, HEAD) never spends a
link and never mints a vendor token for one: mail scanners fetch every link before the reader does. GET and
HEAD answer a confirmation page; only its POST spends the link, once, and then the flow mints as usual. A
HEAD with an interactive token gets the same page's status and no token either.
"""

from __future__ import annotations

import time

from .errors import BridgeError, LoginRequired, NotFound
from .http import App, NoRoute, Response
from .link_store import LinkSpend, LinkState, LinkStore
from .login_token import MAX_TOKEN_LENGTH, LoginIdentity, verify_login_token
from .observability import Logger, Metrics
from .oidc import CALLBACK_PATH, OidcSignIn
from .request import Query, login_redirect_url, request_url
from .responses import confirmation_page, error_response, page_response, redirect_response, wants_json
from .secrets import KeyCache
from .settings import CommonSettings

__all__ = ["SIGN_IN_METHODS", "ConfirmationRequired", "SignIn", "new_app"]

# Every sign-in route answers these: GET and HEAD for people and scanners, POST for a link's button.
SIGN_IN_METHODS = ["GET", "HEAD", "POST"]
_NO_CAMPAIGN = "-"
_REFUSED_LINK = {LinkState.SPENT: "link_spent", LinkState.REVOKED: "link_revoked"}


def new_app() -> App:
    """A flow's routes. Not Powertools' resolver: besides its cost (see ``sso_bridge.http``), its debug mode
    (``POWERTOOLS_DEV``) printed every event, login token included, and every response, vendor token included."""
    return App()


class ConfirmationRequired(Exception):
    """A link opened with a safe method: show who it signs in and ask for the button."""

    def __init__(self, user: LoginIdentity) -> None:
        super().__init__("confirmation required")
        self.user = user


class SignIn:
    """One vendor flow's sign-in: the user behind the login token, links spent once, refusals answered once."""

    def __init__(
        self,
        app: App,
        *,
        settings: CommonSettings,
        audience: str,
        logger: Logger,
        metrics: Metrics,
        links: LinkStore | None = None,
        keys: KeyCache | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.audience = audience
        self.logger = logger
        self.metrics = metrics
        # No AWS call here: the store makes its client on the first link it sees.
        self.links = links or LinkStore(settings.spent_links_table, settings.link_revocations_table)
        self.keys = keys or KeyCache(
            logger=logger,
            max_age=settings.secrets_max_age,
            max_stale=settings.secrets_max_stale,
            previous_grace=settings.login_token_previous_key_grace,
        )
        # With OIDC_ISSUER set, signed-out users sign in at the provider, and /oidc/callback brings them back.
        self.oidc = (
            OidcSignIn(
                settings.oidc,
                keys=self.keys,
                links=self.links,
                login_token_secret_id=settings.login_token_secret_id,
                login_token_max_ttl=settings.login_token_max_ttl,
                leeway=settings.login_token_leeway,
                logger=logger,
                metrics=metrics,
                fallback_retry_url=settings.platform_login_url,
                public_host=settings.public_host,
            )
            if settings.oidc is not None
            else None
        )
        if self.oidc is not None:
            app.route(CALLBACK_PATH, method="GET")(self._oidc_callback)
        self._install_handlers()

    @property
    def method(self) -> str:
        return self.app.current_event.request_context.http.method.upper()

    def identify(self, query: Query) -> LoginIdentity:
        """The user the login token vouches for, once they may be signed in; ``LoginRequired`` before any fetch
        when there is no token, ``ConfirmationRequired`` for a link opened with GET or HEAD."""
        token = query.get("login_token", max_length=MAX_TOKEN_LENGTH)
        if token is None:
            raise LoginRequired("login_token_missing")
        user = verify_login_token(
            token,
            keys=self.keys.login_token_keys(self.settings.login_token_secret_id),
            audience=self.audience,
            max_ttl=self.settings.login_token_max_ttl,
            link_max_ttl=self.settings.link_token_max_ttl,
            leeway=self.settings.login_token_leeway,
        )
        method = self.method
        if user.is_link:
            if method != "POST":
                self._refuse_if_used(self.links.state(jti=str(user.jti), email=user.email, issued_at=user.issued_at))
                raise ConfirmationRequired(user)
            self._spend(user)
        elif method == "HEAD":
            raise ConfirmationRequired(user)
        return user

    def redirect(self, location: str) -> Response:
        """The redirect that carries a vendor token; 303 after the link's POST, so the browser follows with GET."""
        status = 303 if self.method == "POST" else 302
        return redirect_response(location, referrer_policy=self.settings.referrer_policy, status=status)

    def issued(self, user: LoginIdentity, **fields: str | None) -> None:
        """Log and count a vendor token; ``fields`` are the vendor's own (its jti, the brand)."""
        self.metrics.count("TokenIssued")
        extra = {"outcome": "issued", "kind": str(user.kind), "login_jti": user.jti, "vendor": self.audience}
        self.logger.info("token issued", extra={**extra, **fields})

    def vendor_key(self, secret_id: str) -> str:
        """The vendor's signing key (cached); an outage is a 503, never a token."""
        return self.keys.vendor_key(secret_id)

    def _oidc_callback(self) -> Response:
        assert self.oidc is not None
        return self.oidc.callback(self.app.current_event)

    def _refuse_if_used(self, state: LinkState) -> None:
        # Spent, or withdrawn: the normal sign-in round trip, so the owner still gets in and a forwardee does not.
        if state is not LinkState.USABLE:
            raise LoginRequired(_REFUSED_LINK[state])

    def _spend(self, user: LoginIdentity) -> None:
        event = self.app.current_event
        http = event.request_context.http
        spend = LinkSpend(
            jti=str(user.jti),
            vendor=self.audience,
            email=user.email,
            campaign=user.campaign,
            issued_at=user.issued_at,
            expires_at=user.expires_at,
            spent_at=int(time.time()),
            request_id=event.request_context.request_id,
            source_ip=http.get("sourceIp") or "",
            user_agent=http.get("userAgent") or event.headers.get("user-agent") or "",
        )
        self._refuse_if_used(self.links.spend(spend))
        campaign = user.campaign or _NO_CAMPAIGN
        self.logger.info("link spent", extra={"outcome": "link_spent", "link_jti": user.jti, "campaign": campaign})
        self.metrics.count("LinkSpent", campaign=campaign)

    def _install_handlers(self) -> None:
        """Map the domain errors to responses for the app; the routes only raise."""
        app, logger, metrics = self.app, self.logger, self.metrics

        def request_id() -> str:
            return app.current_event.request_context.request_id

        def as_json() -> bool:
            return wants_json(app.current_event.headers.get("accept"))

        def _login_required(exc: LoginRequired) -> Response:
            status = 303 if self.method == "POST" else 302
            if self.oidc is not None:
                # Made before the line below is logged: if the provider is down, its 503 is the one line.
                response = self.oidc.start(app.current_event, audience=self.audience, status=status)
            else:
                assert self.settings.platform_login_url is not None  # settings require one of the two
                return_to = request_url(app.current_event, public_host=self.settings.public_host)
                location = login_redirect_url(self.settings.platform_login_url, return_to)
                response = redirect_response(location, status=status)
            destination = "oidc" if self.oidc is not None else "platform"
            extra = {"outcome": "login_redirect", "reason": exc.reason, "destination": destination}
            logger.info("login required", extra=extra)
            metrics.count("LoginRedirect", reason=exc.reason)
            return response

        def _confirmation_required(exc: ConfirmationRequired) -> Response:
            user = exc.user
            if user.is_link:
                campaign = user.campaign or _NO_CAMPAIGN
                extra = {"outcome": "link_confirm", "link_jti": user.jti, "campaign": campaign}
                logger.info("link opened", extra=extra)
                metrics.count("LinkOpened", campaign=campaign)
            else:
                logger.info("head answered without a token", extra={"outcome": "head", "login_jti": user.jti})
            page = confirmation_page(portal_name=self.settings.portal_name, email=user.email, request_id=request_id())
            if self.method == "HEAD":
                page.body = ""
            return page

        def _refused(exc: BridgeError) -> Response:
            log = logger.error if exc.status >= 500 else logger.warning
            log("request refused", extra={"outcome": "refused", "reason": exc.reason, "detail": exc.detail})
            metrics.count("Refused", reason=exc.reason)
            if exc.status == 503:  # Metrics Insights has no OR: outages get a metric of their own
                metrics.count("Unavailable", reason=exc.reason)
            return error_response(exc, request_id=request_id(), as_json=as_json())

        def _not_found(exc: NoRoute) -> Response:
            logger.info("no such route", extra={"outcome": "not_found", "path": app.current_event.raw_path[:200]})
            return error_response(NotFound(), request_id=request_id(), as_json=as_json())

        def _unexpected(exc: Exception) -> Response:
            # A bug, not bad input: keep the trace in the logs and show the user a reference only.
            logger.exception("unexpected error", extra={"outcome": "error"})
            metrics.count("Refused", reason="internal_error")
            return page_response(500, "Something went wrong", "Please try again in a minute.", request_id=request_id())

        # Registered by call, not decorator: Powertools' decorators are untyped.
        app.exception_handler(LoginRequired)(_login_required)
        app.exception_handler(ConfirmationRequired)(_confirmation_required)
        app.exception_handler(BridgeError)(_refused)
        app.not_found(_not_found)
        app.exception_handler(Exception)(_unexpected)
