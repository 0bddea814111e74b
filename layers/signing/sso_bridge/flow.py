"""The part every vendor flow shares: who is the user, what an email link needs, what a refusal looks like.

Refusals are raised as ``BridgeError`` anywhere in a route and turned into a response here, once, so every
flow logs them the same way (one line, reason and outcome, never the token) and counts them per reason: every
refusal in ``Refused``, and the 503s (an outage, not the user's doing) in ``Unavailable`` too, so an alarm sums
one metric over every outage reason.

Email links are handled here too, so no vendor can forget a step. A safe method (GET, HEAD) never spends a
link and never mints a vendor token for one: mail scanners fetch every link before the reader does. GET and
HEAD answer a confirmation page; only its POST spends the link, once, and then the flow mints as usual. A
HEAD with an interactive token gets the same page's status and no token either. The POST must come from that
page in the same browser (``sso_bridge.link_form``): another site's form spends nothing.

A portal that must start sign-in itself (it signs a nonce it made: Discourse, Freshworks) gets the reader of a spent
link through ``hand_off``: the identity waits in a short-lived cookie (``sso_bridge.handoff``) while the portal
sends the browser back with its parameters.

A link that can no longer sign anyone in (spent, expired, revoked) sends its reader through sign-in and back; a
vendor that takes a deep link (``deep_link_param``) gets the link's signed ``redirect_to`` back as that query
parameter, checked against its allow-list before the reader leaves.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection

from .errors import BridgeError, InvalidLoginToken, LinkPostRefused, LoginRequired, MalformedLoginToken, NotFound
from .handoff import HANDOFF_SECONDS, Handoff
from .http import App, NoRoute, Response
from .i18n import N_
from .link_form import bind, check_post
from .link_store import LinkSpend, LinkState, LinkStore
from .login_token import MAX_TOKEN_LENGTH, LoginIdentity, verify_login_token
from .observability import Logger, Metrics
from .oidc import CALLBACK_PATH, OidcSignIn
from .pages import PageContext
from .redirects import allowed_url
from .request import Query, login_redirect_url, public_origin, request_url
from .responses import (
    confirmation_page,
    error_response,
    page_response,
    redirect_response,
    signed_out_page,
    wants_json,
)
from .secrets import KeyCache
from .settings import CommonSettings

__all__ = ["SIGN_IN_METHODS", "ConfirmationRequired", "SignIn", "new_app"]

# Every sign-in route answers these: GET and HEAD for people and scanners, POST for a link's button.
SIGN_IN_METHODS = ["GET", "HEAD", "POST"]
# A "Sign in again" URL made from the request is linked only when it is plain (printable ASCII, not huge).
_PLAIN_URL = re.compile(r"[\x21-\x7e]{1,4096}", re.ASCII)
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
        deep_link_param: str | None = None,
        deep_link_hosts: Collection[str] = (),
    ) -> None:
        """``deep_link_param``: the query parameter the vendor's route takes a destination from (ClickFunnels'
        ``redirect_to``), checked against ``deep_link_hosts``."""
        self.app = app
        self.settings = settings
        self.audience = audience
        self.logger = logger
        self.metrics = metrics
        self.deep_link_param = deep_link_param
        self.deep_link_hosts = frozenset(deep_link_hosts)
        self.handoff = Handoff(audience)
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
        handed_off = token is None
        if token is None:
            # Back from a portal that started its own sign-in after ``hand_off``: the identity is in the cookie.
            token = self.handoff.token(self.app.current_event)
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
        if handed_off and user.is_link:
            raise InvalidLoginToken("handoff_link")  # the bridge only ever keeps an interactive token there
        method = self.method
        if user.is_link:
            if method != "POST":
                state = self.links.state(jti=str(user.jti), email=user.email, issued_at=user.issued_at)
                self._refuse_if_used(state, user)
                raise ConfirmationRequired(user)
            self._check_button(user)
            self._spend(user)
        elif method == "HEAD":
            raise ConfirmationRequired(user)
        return user

    def redirect(self, location: str) -> Response:
        """The redirect that carries a vendor token; 303 after the link's POST, so the browser follows with GET."""
        status = 303 if self.method == "POST" else 302
        return self.finish(redirect_response(location, referrer_policy=self.settings.referrer_policy, status=status))

    def finish(self, response: Response) -> Response:
        """A response that hands a vendor token over: the hand-off cookie, if this request had one, is spent."""
        if self.handoff.name in self.app.current_event.cookies:
            response.cookies.append(self.handoff.clear())
        return response

    def hand_off(self, user: LoginIdentity, start_url: str) -> Response:
        """Send ``user`` to the portal's own start of sign-in (``start_url``), which sends them back with its
        parameters; meanwhile who they are waits in the hand-off cookie. For portals whose answer signs a value
        they made (a nonce): the bridge cannot mint it before they ask."""
        login_key = next(iter(self.keys.login_token_keys(self.settings.login_token_secret_id)))
        lifetime = min(HANDOFF_SECONDS, self.settings.login_token_max_ttl)
        status = 303 if self.method == "POST" else 302
        response = redirect_response(start_url, status=status)
        response.cookies.append(self.handoff.cookie(user, login_key=login_key, lifetime=lifetime))
        extra = {"outcome": "handed_off", "kind": str(user.kind), "login_jti": user.jti, "vendor": self.audience}
        self.logger.info("sent to the portal to start sign-in", extra=extra)
        self.metrics.count("HandedOff")
        return response

    def signed_out(self, *, portal_url: str) -> Response:
        """A portal's remote logout: the provider's session ends too (``OIDC_LOGOUT``), then ``PLATFORM_LOGOUT_URL``;
        without either, a signed-out page with ways forward (the platform, the portal at ``portal_url``)."""
        self.logger.info("signed out", extra={"outcome": "logout", "vendor": self.audience})
        logout_url = self.settings.platform_logout_url
        provider_logout = self.oidc.logout_url(logout_url) if self.oidc is not None else None
        if provider_logout:
            return redirect_response(provider_logout)
        if logout_url:
            return redirect_response(logout_url)
        return signed_out_page(
            portal_name=self.settings.portal_name,
            portal_url=portal_url,
            request_id=self.app.current_event.request_context.request_id,
            context=self.page_context(),
        )

    def issued(self, user: LoginIdentity, **fields: str | None) -> None:
        """Log and count a vendor token; ``fields`` are the vendor's own (its jti, the brand)."""
        self.metrics.count("TokenIssued")
        extra = {"outcome": "issued", "kind": str(user.kind), "login_jti": user.jti, "vendor": self.audience}
        self.logger.info("token issued", extra={**extra, **fields})

    def vendor_key(self, secret_id: str) -> str:
        """The vendor's signing key (cached); an outage is a 503, never a token."""
        return self.keys.vendor_key(secret_id)

    def page_context(self) -> PageContext:
        """The reader's language (``Accept-Language``) and the company's brand, for a page answering this request."""
        return PageContext.for_request(
            self.app.current_event.headers.get("accept-language"),
            brand=self.settings.brand,
            home_url=self.settings.home_url,
        )

    def _sign_in_again(self, exc: BridgeError) -> None:
        """A refusal's way forward when it names none: signing in afresh, then back to this route.

        Through the platform's sign-in with the route as ``return_to``, or with OpenID the route itself, which starts
        it. The query comes along when only the login token was wrong; otherwise the route alone (the query may be
        what was refused). Not for a 404 (the platform's home is offered) nor the OpenID callback (``oidc.callback``
        names its own), nor an outage.
        """
        event = self.app.current_event
        if exc.retry_url is not None or exc.status >= 500 or isinstance(exc, NotFound) or event.path == CALLBACK_PATH:
            return
        public_host = self.settings.public_host
        route = f"{public_origin(event, public_host)}{event.raw_path or '/'}"
        token_only = isinstance(exc, InvalidLoginToken | MalformedLoginToken)
        candidates = [request_url(event, public_host=public_host), route] if token_only else [route]
        return_to = next((url for url in candidates if _PLAIN_URL.fullmatch(url)), None)
        if return_to is None:
            return  # a hostile path: no link rather than a strange one
        if self.oidc is None and self.settings.platform_login_url is not None:
            return_to = login_redirect_url(self.settings.platform_login_url, return_to)
        exc.retry_url = return_to
        exc.retry_label = N_("Sign in again")

    def _oidc_callback(self) -> Response:
        assert self.oidc is not None
        return self.oidc.callback(self.app.current_event)

    def _refuse_if_used(self, state: LinkState, user: LoginIdentity) -> None:
        # Spent, or withdrawn: the normal sign-in round trip, so the owner still gets in and a forwardee does not.
        if state is not LinkState.USABLE:
            refused = LoginRequired(_REFUSED_LINK[state])
            refused.deep_link = user.redirect_to
            raise refused

    def _check_button(self, user: LoginIdentity) -> None:
        """The POST came from the link's page in this browser, or nothing is spent (login CSRF)."""
        event = self.app.current_event
        try:
            check_post(
                event,
                jti=str(user.jti),
                login_keys=self.keys.login_token_keys(self.settings.login_token_secret_id),
                public_host=self.settings.public_host,
            )
        except LinkPostRefused as exc:
            # The way forward: the link itself, opened again (a GET shows the page, with the cookie).
            exc.retry_url = request_url(event, public_host=self.settings.public_host, without=())
            raise

    def _return_parameters(self, exc: LoginRequired) -> dict[str, str] | None:
        """The link's destination for the return URL, when the vendor takes one; refused now if not allowed."""
        if self.deep_link_param is None or not exc.deep_link:
            return None
        return {self.deep_link_param: allowed_url(exc.deep_link, self.deep_link_hosts)}

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
        self._refuse_if_used(self.links.spend(spend), user)
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
            add = self._return_parameters(exc)
            if self.oidc is not None:
                # Made before the line below is logged: if the provider is down, its 503 is the one line.
                response = self.oidc.start(app.current_event, audience=self.audience, status=status, add=add)
            else:
                assert self.settings.platform_login_url is not None  # settings require one of the two
                return_to = request_url(app.current_event, public_host=self.settings.public_host, add=add)
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
            binding = None
            if user.is_link:
                # The button's binding to this browser: the cookie, and the hidden field the form sends back.
                login_key = next(iter(self.keys.login_token_keys(self.settings.login_token_secret_id)))
                binding = bind(app.current_event, jti=str(user.jti), login_key=login_key)
            page = confirmation_page(
                portal_name=self.settings.portal_name,
                email=user.email,
                request_id=request_id(),
                form_field=binding.field if binding else None,
                context=self.page_context(),
            )
            if binding is not None:
                page.cookies.append(binding.cookie)
            if self.method == "HEAD":
                page.body = ""
            return page

        def _refused(exc: BridgeError) -> Response:
            log = logger.error if exc.status >= 500 else logger.warning
            log("request refused", extra={"outcome": "refused", "reason": exc.reason, "detail": exc.detail})
            metrics.count("Refused", reason=exc.reason)
            if exc.status == 503:  # Metrics Insights has no OR: outages get a metric of their own
                metrics.count("Unavailable", reason=exc.reason)
            self._sign_in_again(exc)
            return error_response(exc, request_id=request_id(), as_json=as_json(), context=self.page_context())

        def _not_found(exc: NoRoute) -> Response:
            logger.info("no such route", extra={"outcome": "not_found", "path": app.current_event.raw_path[:200]})
            return error_response(NotFound(), request_id=request_id(), as_json=as_json(), context=self.page_context())

        def _unexpected(exc: Exception) -> Response:
            # A bug, not bad input: keep the trace in the logs and show the user a reference only.
            logger.exception("unexpected error", extra={"outcome": "error"})
            metrics.count("Refused", reason="internal_error")
            return page_response(
                500,
                N_("Something went wrong"),
                N_("Please try again in a minute."),
                request_id=request_id(),
                context=self.page_context(),
            )

        # Registered by call, not decorator: Powertools' decorators are untyped.
        app.exception_handler(LoginRequired)(_login_required)
        app.exception_handler(ConfirmationRequired)(_confirmation_required)
        app.exception_handler(BridgeError)(_refused)
        app.not_found(_not_found)
        app.exception_handler(Exception)(_unexpected)
