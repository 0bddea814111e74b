"""Vendor stand-ins: the placeholder vendor hosts `make run` answers for, and the Kustomer brands behind them.

A sign-in then ends on the vendor's "Signed in as ..." page (``local.vendors``), each stand-in checking the
vendor token with the key the stack seeded for it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from local import vendors
from local.console import note
from local.lambdas import DEMO_KUSTOMER_BRAND, LOCAL_DEFAULTS
from local.server import App, Reply, Request

if TYPE_CHECKING:
    from local.aws import LocalSecret

__all__ = [
    "KustomerBrand",
    "StandIn",
    "brand_secrets",
    "brand_seed_var",
    "kustomer_brands",
    "plan_standins",
    "standin_app",
]


@dataclass(frozen=True)
class KustomerBrand:
    name: str | None  # None: the default brand
    secret_id: str
    hosts: tuple[str, ...]  # the portal's host first, then the other redirect hosts

    @property
    def path(self) -> str:
        return "/kustomer/login" if self.name is None else f"/kustomer/brands/{self.name}/login"


def _host(url: str) -> str:
    return (urlsplit(url.strip()).hostname or "").lower()


def _hosts(portal_url: str, redirect_hosts: Sequence[str]) -> tuple[str, ...]:
    hosts = [_host(portal_url)] if portal_url.strip() else []
    hosts += [host.strip().lower() for host in redirect_hosts if host.strip()]
    return tuple(dict.fromkeys(host for host in hosts if host))


def kustomer_brands(env: Mapping[str, str]) -> list[KustomerBrand]:
    """The Kustomer function's brands, default first, read leniently: the function itself refuses bad ones."""
    if "KUSTOMER_SECRET_ID" not in env:
        return []
    hosts = _hosts(env.get("KUSTOMER_PORTAL_URL", ""), env.get("KUSTOMER_REDIRECT_HOSTS", "").split(","))
    brands = [KustomerBrand(None, env["KUSTOMER_SECRET_ID"], hosts)]
    try:
        config = json.loads(env.get("KUSTOMER_BRANDS") or "{}")
    except ValueError:
        return brands
    for name, entry in config.items() if isinstance(config, dict) else ():
        if not isinstance(entry, dict) or not isinstance(entry.get("secret_id"), str):
            continue
        listed, portal = entry.get("redirect_hosts"), entry.get("portal_url")
        redirect = [host for host in listed if isinstance(host, str)] if isinstance(listed, list) else []
        hosts = _hosts(portal if isinstance(portal, str) else "", redirect)
        brands.append(KustomerBrand(str(name), entry["secret_id"], hosts))
    return brands


def brand_seed_var(brand: str) -> str:
    return f"KUSTOMER_{brand.upper().replace('-', '_')}_JWT_SECRET"


def brand_secrets(
    environments: Sequence[Mapping[str, str]], shell: Mapping[str, str], planned: Sequence[LocalSecret]
) -> list[LocalSecret]:
    """Brand secrets to seed: the demo brand's while ``KUSTOMER_BRANDS`` is the local default, and any brand's
    whose key the shell gives as ``KUSTOMER_<BRAND>_JWT_SECRET``. Others are the operator's to create."""
    from local.aws import plan_extra_secret

    taken = {secret.name for secret in planned}
    found = []
    for env in environments:
        for brand in kustomer_brands(env):
            if brand.name is None or brand.secret_id in taken:
                continue
            seed_var = brand_seed_var(brand.name)
            demo = brand.name == DEMO_KUSTOMER_BRAND and "KUSTOMER_BRANDS" not in shell
            if demo or seed_var in shell:
                found.append(plan_extra_secret(brand.secret_id, seed_var, shell))
                taken.add(brand.secret_id)
    return found


def _placeholder_hosts() -> frozenset[str]:
    """The vendor hosts of ``LOCAL_DEFAULTS``: made up, so the stack may answer for them."""
    hosts = {LOCAL_DEFAULTS["CLICKFUNNELS_WORKSPACE_DOMAIN"], _host(LOCAL_DEFAULTS["HAPPYFOX_ACCOUNT_URL"])}
    for brand in kustomer_brands({**LOCAL_DEFAULTS, "KUSTOMER_SECRET_ID": "-"}):
        hosts.update(brand.hosts)
    return frozenset(hosts)


@dataclass(frozen=True)
class StandIn:
    """A vendor site served locally for a placeholder host; ``entry`` is the page to open first."""

    vendor: str  # clickfunnels, kustomer, happyfox
    host: str
    key: str
    entry: str
    login_url: str = ""  # Kustomer's Redirect URI, HappyFox's Remote Login URL (on the stack's HTTP API)
    brand: str | None = None

    @property
    def label(self) -> str:
        titles = {
            "clickfunnels": "ClickFunnels customer center",
            "kustomer": "Kustomer help center",
            "happyfox": "HappyFox support centre",
        }
        brand = f", brand {self.brand}" if self.brand else ""
        return f"{titles[self.vendor]} for {self.host}{brand}"

    def app(self) -> App:
        if self.vendor == "clickfunnels":
            return vendors.clickfunnels(workspace_domain=self.host, key=self.key)
        if self.vendor == "kustomer":
            return vendors.kustomer(portal_host=self.host, key=self.key, redirect_uri=self.login_url)
        return vendors.happyfox(account_host=self.host, key=self.key, remote_login_url=self.login_url)


def plan_standins(
    environments: Sequence[Mapping[str, str]], local_secrets: Sequence[LocalSecret], *, api_url: str
) -> list[StandIn]:
    """One stand-in per placeholder vendor host the functions use, keyed with the secret seeded for it.

    A host set in the shell to a real one has none: its redirects go to the real vendor.
    """
    keys = {secret.name: secret.value for secret in local_secrets}
    placeholders = _placeholder_hosts()
    sites: dict[str, StandIn] = {}

    def add(site: StandIn) -> None:
        if site.host in placeholders and site.key and site.host not in sites:
            sites[site.host] = site

    for env in environments:
        if "CLICKFUNNELS_WORKSPACE_DOMAIN" in env:
            key = keys.get(env.get("CLICKFUNNELS_SECRET_ID", ""), "")
            add(StandIn("clickfunnels", env["CLICKFUNNELS_WORKSPACE_DOMAIN"].strip().lower(), key, "/"))
        for brand in kustomer_brands(env):
            for host in brand.hosts:
                login_url = f"{api_url}{brand.path}"
                add(StandIn("kustomer", host, keys.get(brand.secret_id, ""), "/login", login_url, brand.name))
        if "HAPPYFOX_ACCOUNT_URL" in env:
            key = keys.get(env.get("HAPPYFOX_SECRET_ID", ""), "")
            add(StandIn("happyfox", _host(env["HAPPYFOX_ACCOUNT_URL"]), key, "/", f"{api_url}/happyfox/login"))
    return list(sites.values())


def standin_app(app: App) -> App:
    """The stand-in, with an outcome for its log line (stand-ins print nothing)."""

    def noted(request: Request) -> Reply:
        reply = app(request)
        if reply.status == 200 and b"<h1>Signed in as " in reply.body:
            note("signed_in")
        else:
            note("refused" if reply.status >= 400 else "page")
        return reply

    return noted
