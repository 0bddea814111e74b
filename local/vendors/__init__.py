"""Local stand-ins for the vendors' side of SSO, one module per vendor (``site`` has what they share)."""

from local.vendors.clickfunnels import clickfunnels
from local.vendors.happyfox import HAPPYFOX_SKEW_SECONDS, HAPPYFOX_WINDOW_SECONDS, happyfox
from local.vendors.kustomer import KUSTOMER_SKEW_SECONDS, KUSTOMER_WINDOW_SECONDS, kustomer

__all__ = [
    "HAPPYFOX_SKEW_SECONDS",
    "HAPPYFOX_WINDOW_SECONDS",
    "KUSTOMER_SKEW_SECONDS",
    "KUSTOMER_WINDOW_SECONDS",
    "clickfunnels",
    "happyfox",
    "kustomer",
]
