"""One exception tree for the bridge.

Every error a request can meet is a ``BridgeError`` with an HTTP status, a stable ``code`` (its kind, for
clients), a finer ``reason`` (logged, counted, returned in JSON beside the code) and a fixed human message:
pages never show ``str(exc)``, so nothing an attacker sends is echoed back. Configuration faults stand
apart: they are the operator's to fix and stop a function at cold start.

Titles and messages are English msgids, marked with ``N_`` for ``pybabel extract`` and shown in the reader's
language (``sso_bridge.pages``): a new one needs a translation in every catalog (``make messages``), or
``tests/unit/test_catalogs.py`` fails.
"""

from __future__ import annotations

from .i18n import N_

__all__ = [
    "BadRequest",
    "BridgeError",
    "ConfigurationError",
    "DependencyUnavailable",
    "InputTooLarge",
    "InvalidIdToken",
    "InvalidLoginToken",
    "LinkPostRefused",
    "LoginRequired",
    "MalformedLoginToken",
    "NotFound",
    "OidcRefused",
    "ProviderUnavailable",
    "RedirectNotAllowed",
    "UnverifiedIdentity",
    "WrongAudience",
]


class ConfigurationError(Exception):
    """The deployment is misconfigured; the message names the variable to fix."""


class BridgeError(Exception):
    """A request the bridge refuses; handled once, in the resolver's exception handler."""

    status: int = 400
    code: str = "bad_request"
    reason: str = "bad_request"
    title: str = N_("This link cannot be used")
    message: str = N_("This link is incomplete or damaged. Please sign in again.")

    # Where "Try again" leads, when the bridge knows a safe place (its own sign-in URL); shown as a link.
    retry_url: str | None = None
    # The link's label (a msgid); the flow says "Sign in again" when the link is the sign-in it chose.
    retry_label: str = N_("Try again")

    def __init__(self, reason: str | None = None, *, detail: str = "") -> None:
        # ``detail`` is for logs only; it never reaches the page.
        self.reason = reason or type(self).reason
        self.detail = detail
        super().__init__(f"{self.reason}: {detail}" if detail else self.reason)


class BadRequest(BridgeError):
    status = 400
    reason = "bad_request"


class InputTooLarge(BridgeError):
    status = 414
    code = reason = "too_large"
    title = N_("This link is too long")
    message = N_("Part of this link is longer than we accept. Please sign in again, or ask for a new link.")


class LoginRequired(BridgeError):
    """No login token, or an expired one: the user is sent to the platform to sign in again."""

    status = 401
    code = reason = "login_required"
    title = N_("Please sign in")
    message = N_("Your sign-in has expired. Please sign in again.")

    # A link's destination (its signed ``redirect_to``): the sign-in round trip brings the reader back to it.
    deep_link: str | None = None


class InvalidLoginToken(BridgeError):
    status = 401
    code = reason = "invalid_login_token"
    title = N_("We could not sign you in")
    message = N_("This sign-in link is not valid. Please sign in again.")


class WrongAudience(InvalidLoginToken):
    status = 403
    code = reason = "wrong_audience"
    message = N_("This sign-in link was made for another service. Please sign in again.")


class MalformedLoginToken(BadRequest):
    """A login token that is not a JWT at all, or whose claims are unusable (bad email, too long)."""

    code = reason = "invalid_login_token"
    title = InvalidLoginToken.title
    message = N_("This sign-in link is damaged or incomplete. Please sign in again.")


class LinkPostRefused(BridgeError):
    """An email link's POST that its own page in this browser did not send (another site's form: login CSRF)."""

    status = 403
    code = reason = "link_post_refused"
    title = N_("Nothing happened")
    message = N_(
        "This link was not used: the request did not come from its own page in this browser, or the page was "
        "open too long. To sign in, open the link again and press Continue."
    )


class RedirectNotAllowed(BridgeError):
    status = 400
    code = reason = "redirect_not_allowed"
    title = N_("This destination is not allowed")
    message = N_("The page this link points to is not on the list of allowed destinations.")


class NotFound(BridgeError):
    status = 404
    code = reason = "not_found"
    title = N_("Page not found")
    message = N_("There is nothing at this address.")


class DependencyUnavailable(BridgeError):
    status = 503
    code = reason = "dependency_unavailable"
    title = N_("Temporarily unavailable")
    message = N_("Sign-in is temporarily unavailable. Please try again in a minute.")


class OidcRefused(BridgeError):
    """The identity provider's answer did not pass a check (or the provider said no): start again."""

    status = 400
    code = reason = "oidc_refused"
    title = N_("We could not sign you in")
    message = N_("Signing in with your company account did not complete. Please try again.")


class InvalidIdToken(OidcRefused):
    """The ID token (or the userinfo answer) failed a check: forged, for someone else, stale or replayed."""

    status = 401
    code = reason = "oidc_id_token_invalid"


class UnverifiedIdentity(OidcRefused):
    """The provider vouches for someone, but not for an email we may open a customer account for."""

    status = 403
    code = reason = "oidc_email_unverified"
    title = N_("This account cannot be used here")
    message = N_(
        "Your company account has no verified email address we can use for this portal. "
        "Please try again with another account, or ask your administrator."
    )


class ProviderUnavailable(DependencyUnavailable):
    reason = "oidc_provider_unavailable"
