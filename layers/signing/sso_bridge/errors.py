"""One exception tree for the bridge.

Every error a request can meet is a ``BridgeError`` with an HTTP status, a stable ``code`` (its kind, for
clients), a finer ``reason`` (logged, counted, returned in JSON beside the code) and a fixed human message:
pages never show ``str(exc)``, so nothing an attacker sends is echoed back. Configuration faults stand
apart: they are the operator's to fix and stop a function at cold start.
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "BridgeError",
    "ConfigurationError",
    "DependencyUnavailable",
    "InputTooLarge",
    "InvalidIdToken",
    "InvalidLoginToken",
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
    title: str = "This link cannot be used"
    message: str = "The request was not understood. Please go back and try the link again."

    # Where "Try again" leads, when the bridge knows a safe place (its own sign-in URL); shown as a link.
    retry_url: str | None = None

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
    title = "This link is too long"
    message = "Part of this link is longer than we accept. Please ask for a new link."


class LoginRequired(BridgeError):
    """No login token, or an expired one: the user is sent to the platform to sign in again."""

    status = 401
    code = reason = "login_required"
    title = "Please sign in"
    message = "Your sign-in has expired. Please sign in again."


class InvalidLoginToken(BridgeError):
    status = 401
    code = reason = "invalid_login_token"
    title = "We could not sign you in"
    message = "This sign-in link is not valid. Please sign in again from the start."


class WrongAudience(InvalidLoginToken):
    status = 403
    code = reason = "wrong_audience"
    message = "This sign-in link was made for another service. Please sign in again from the start."


class MalformedLoginToken(BadRequest):
    """A login token that is not a JWT at all, or whose claims are unusable (bad email, too long)."""

    code = reason = "invalid_login_token"
    title = InvalidLoginToken.title
    message = "This sign-in link is damaged or incomplete. Please sign in again from the start."


class RedirectNotAllowed(BridgeError):
    status = 400
    code = reason = "redirect_not_allowed"
    title = "This destination is not allowed"
    message = "The page this link points to is not on the list of allowed destinations."


class NotFound(BridgeError):
    status = 404
    code = reason = "not_found"
    title = "Page not found"
    message = "There is nothing at this address."


class DependencyUnavailable(BridgeError):
    status = 503
    code = reason = "dependency_unavailable"
    title = "Temporarily unavailable"
    message = "Sign-in is temporarily unavailable. Please try again in a minute."


class OidcRefused(BridgeError):
    """The identity provider's answer did not pass a check (or the provider said no): start again."""

    status = 400
    code = reason = "oidc_refused"
    title = "We could not sign you in"
    message = "Signing in with your company account did not complete. Please try again."


class InvalidIdToken(OidcRefused):
    """The ID token (or the userinfo answer) failed a check: forged, for someone else, stale or replayed."""

    status = 401
    code = reason = "oidc_id_token_invalid"


class UnverifiedIdentity(OidcRefused):
    """The provider vouches for someone, but not for an email we may open a customer account for."""

    status = 403
    code = reason = "oidc_email_unverified"
    title = "This account cannot be used here"
    message = (
        "Your company account has no verified email address we can use for this portal. "
        "Please try again with another account, or ask your administrator."
    )


class ProviderUnavailable(DependencyUnavailable):
    reason = "oidc_provider_unavailable"
