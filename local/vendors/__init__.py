"""Local stand-ins for the vendors' side of SSO, one module per vendor (``site`` has what they share).

``SPECS`` is the registry `make run` plans from (``local.standins``, ``local.lambdas``, ``local.aws``): each vendor
module's ``SPEC``, in the template's vendor order. A new vendor adds its module and its line below.
"""

from local.vendors.canny import SPEC as CANNY
from local.vendors.clickfunnels import SPEC as CLICKFUNNELS
from local.vendors.clickfunnels import clickfunnels
from local.vendors.discourse import SPEC as DISCOURSE
from local.vendors.freshworks import SPEC as FRESHWORKS
from local.vendors.happyfox import HAPPYFOX_SKEW_SECONDS, HAPPYFOX_WINDOW_SECONDS, happyfox
from local.vendors.happyfox import SPEC as HAPPYFOX
from local.vendors.kustomer import KUSTOMER_SKEW_SECONDS, KUSTOMER_WINDOW_SECONDS, kustomer
from local.vendors.kustomer import SPEC as KUSTOMER
from local.vendors.site import StandInSpec
from local.vendors.zendesk import SPEC as ZENDESK

__all__ = [
    "HAPPYFOX_SKEW_SECONDS",
    "HAPPYFOX_WINDOW_SECONDS",
    "KUSTOMER_SKEW_SECONDS",
    "KUSTOMER_WINDOW_SECONDS",
    "SPECS",
    "clickfunnels",
    "happyfox",
    "kustomer",
    "seed_var",
    "spec_for_secret",
]

SPECS: tuple[StandInSpec, ...] = (
    CLICKFUNNELS,
    KUSTOMER,
    HAPPYFOX,
    ZENDESK,
    CANNY,
    DISCOURSE,
    FRESHWORKS,
)


def spec_for_secret(env_var: str) -> StandInSpec | None:
    """The vendor whose key ``env_var`` (``CANNY_SECRET_ID``) names, if a stand-in module declares it."""
    return next((spec for spec in SPECS if spec.secret_setting == env_var), None)


def seed_var(env_var: str) -> str:
    """The shell variable `make run` seeds the secret named by ``env_var`` from: the vendor's ``SPEC.seed_var``
    (``DISCOURSE_CONNECT_SECRET``), else LOGIN_TOKEN_SECRET_ID -> LOGIN_TOKEN_SECRET, X_SECRET_ID -> X_JWT_SECRET."""
    spec = spec_for_secret(env_var)
    if spec is not None:
        return spec.seed_var
    prefix = env_var.removesuffix("_SECRET_ID")
    return f"{prefix}_SECRET" if prefix == "LOGIN_TOKEN" else f"{prefix}_JWT_SECRET"
