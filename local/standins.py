"""Vendor stand-ins: the placeholder vendor hosts `make run` answers for, planned from each vendor's ``SPEC``
(``local.vendors.SPECS``), and the Kustomer brands behind Kustomer's.

A sign-in then ends on the vendor's "Signed in as ..." page (``local.vendors``), each stand-in checking the
vendor token with the key the stack seeded for it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from local.console import note
from local.server import App, Reply, Request
from local.vendors import SPECS
from local.vendors.kustomer import DEMO_BRAND, portal_hosts
from local.vendors.kustomer import SPEC as KUSTOMER
from local.vendors.site import StandInContext, StandInSpec

if TYPE_CHECKING:
    from local.aws import LocalSecret

__all__ = [
    "KustomerBrand",
    "StandIn",
    "brand_secrets",
    "brand_seed_var",
    "kustomer_brands",
    "placeholder_hosts",
    "plan_standins",
    "standin_app",
    "usable_key",
]


@dataclass(frozen=True)
class KustomerBrand:
    name: str | None  # None: the default brand
    secret_id: str
    hosts: tuple[str, ...]  # the portal's host first, then the other redirect hosts

    @property
    def path(self) -> str:
        return "/kustomer/login" if self.name is None else f"/kustomer/brands/{self.name}/login"


def kustomer_brands(env: Mapping[str, str]) -> list[KustomerBrand]:
    """The Kustomer function's brands, default first, read leniently: the function itself refuses bad ones."""
    if "KUSTOMER_SECRET_ID" not in env:
        return []
    brands = [KustomerBrand(None, env["KUSTOMER_SECRET_ID"], KUSTOMER.hosts_in(env))]
    try:
        config = json.loads(env.get("KUSTOMER_BRANDS") or "{}")
    except ValueError:
        return brands
    for name, entry in config.items() if isinstance(config, dict) else ():
        if not isinstance(entry, dict) or not isinstance(entry.get("secret_id"), str):
            continue
        listed, portal = entry.get("redirect_hosts"), entry.get("portal_url")
        redirect = [host for host in listed if isinstance(host, str)] if isinstance(listed, list) else []
        hosts = portal_hosts(portal if isinstance(portal, str) else "", redirect)
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
            demo = brand.name == DEMO_BRAND and "KUSTOMER_BRANDS" not in shell
            if demo or seed_var in shell:
                found.append(plan_extra_secret(brand.secret_id, seed_var, shell))
                taken.add(brand.secret_id)
    return found


def placeholder_hosts() -> frozenset[str]:
    """Every vendor host of the local defaults (``SPEC.defaults``): made up, so the stack may answer for them."""
    hosts = {host for spec in SPECS for host in spec.hosts_in(spec.defaults)}
    for brand in kustomer_brands({**KUSTOMER.defaults, "KUSTOMER_SECRET_ID": "-"}):
        hosts.update(brand.hosts)
    return frozenset(hosts)


def usable_key(spec: StandInSpec, key: str) -> bool:
    """Whether the stand-in can check tokens with ``key``: an RSA vendor's must be a PEM private key (a
    placeholder such as REPLACE_ME is left to the function, which answers 503, and gets no stand-in)."""
    if not key:
        return False
    if spec.key_kind != "rsa":
        return True
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        private = serialization.load_pem_private_key(key.encode(), password=None)
    except (ValueError, TypeError):
        return False
    return isinstance(private, rsa.RSAPrivateKey)


@dataclass(frozen=True)
class StandIn:
    """A vendor site served locally for a placeholder host; ``entry`` is the page to open first."""

    spec: StandInSpec = field(repr=False)
    host: str
    key: str = field(repr=False)
    entry: str
    login_url: str  # the bridge's route the vendor sends users to (Kustomer's: the brand's)
    env: Mapping[str, str] = field(repr=False, compare=False)  # the function's environment, as it sees it
    brand: str | None = None
    start: bool = True  # where users start; False: another host of the vendor's, where the bridge sends them

    @property
    def vendor(self) -> str:
        return self.spec.vendor

    @property
    def label(self) -> str:
        if not self.start:
            return f"{self.spec.title}: {self.host}, where the bridge sends you back"
        brand = f", brand {self.brand}" if self.brand else ""
        return f"{self.spec.title} for {self.host}{brand}"

    def app(self) -> App:
        return self.spec.make(StandInContext(host=self.host, key=self.key, login_url=self.login_url, env=self.env))


def plan_standins(
    environments: Sequence[Mapping[str, str]], local_secrets: Sequence[LocalSecret], *, api_url: str
) -> list[StandIn]:
    """The stand-ins for the placeholder vendor hosts the functions use, each keyed with the secret seeded for it.

    A vendor's hosts come from its ``SPEC`` (Canny's board and canny.io, Freshworks' portal and redirect host): all
    of them are served while the first is a placeholder. A host set in the shell to a real one has none: its
    redirects go to the real vendor.
    """
    keys = {secret.name: secret.value for secret in local_secrets}
    placeholders = placeholder_hosts()
    sites: dict[str, StandIn] = {}

    def add(site: StandIn) -> None:
        if site.host in placeholders and usable_key(site.spec, site.key) and site.host not in sites:
            sites[site.host] = site

    for env in environments:
        for spec in SPECS:
            if spec.secret_setting not in env:
                continue
            if spec is KUSTOMER:
                for brand in kustomer_brands(env):
                    key, login_url = keys.get(brand.secret_id, ""), f"{api_url}{brand.path}"
                    for host in brand.hosts:
                        add(StandIn(spec, host, key, spec.entry, login_url, env, brand.name))
                continue
            hosts = spec.hosts_in(env)
            if not hosts or hosts[0] not in placeholders:
                continue
            key = keys.get(env[spec.secret_setting], "")
            for position, host in enumerate(hosts):
                # Users start on the first host's entry page; the others open on their own home pages.
                entry = spec.entry if position == 0 else "/"
                add(StandIn(spec, host, key, entry, f"{api_url}{spec.login_path}", env, start=position == 0))
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
