"""What a vendor sends to the bridge and how it checks the answer, declared once beside its stand-in (``SPEC.portal``).

The tests (``tests/vendor_requests.py``: hostile events, logs, faults, cold starts, slow dependencies, email links)
meet every vendor through its ``Portal``: the query its portal puts on the bridge's login URL, the hosts the
bridge may send its users to, the answer's parameters that carry its credentials, and how the vendor checks them
(its key, its algorithm). The stand-in module that plays the vendor declares it, with the checks it already has
(Discourse's HMAC, Freshworks' public key), so a new portal's "what it sends" lives in one module.

A ``Portal`` is made from the function's settings (the tests' ``BASE_ENV``, or `make run`'s ``LOCAL_DEFAULTS``) and
the vendor's key; its values are fixed examples, except where the vendor makes a fresh one per request
(Discourse's nonce).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import jwt

__all__ = [
    "Overrides",
    "Portal",
    "PortalFactory",
    "Query",
    "first_of",
    "form_posts",
    "hosts_of",
    "hs256_reader",
    "plain_query",
    "simple_portal",
]

Query = dict[str, str]
Overrides = Mapping[str, str | None]


@dataclass(frozen=True)
class Portal:
    """One vendor's side of a sign-in, under one set of function settings."""

    vendor: str
    params: tuple[str, ...]  # what the vendor puts in the query (for Discourse also the fields it signs into sso)
    build: Callable[[Overrides], Query]  # its well-formed query, some parameters replaced (None: left out)
    hosts: frozenset[str]  # where the bridge may send a browser for this vendor, under these settings
    # The answer's parameters (in the Location's query or a posted form) that carry the vendor's token.
    credentials: tuple[str, ...]
    read: Callable[[Mapping[str, str]], dict[str, Any]]  # those credentials, checked as the vendor checks them
    destination: str | None = None  # the parameter naming where the vendor should take the user afterwards
    hands_off: bool = False  # only the vendor can start the flow: without its request the bridge sends users to it
    posts_form: bool = False  # the token goes in a form the page posts at once (200), not in a redirect (302/303)
    email_of: Callable[[Mapping[str, Any]], str] = lambda claims: str(claims["email"])  # whom the claims name

    def query(self, **overrides: str | None) -> str:
        """The query the vendor sends, each value percent-encoded as a browser would."""
        return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in self.pairs(**overrides))

    def pairs(self, **overrides: str | None) -> list[tuple[str, str]]:
        return list(self.build(overrides).items())

    def sign_in(self, token: str | None, **overrides: str | None) -> str:
        """The vendor's query with the platform's login token appended (as it is: tests pass odd ones)."""
        query = self.query(**overrides)
        if token is None:
            return query
        return f"{query}&login_token={token}" if query else f"login_token={token}"

    def signed_in_status(self, method: str = "GET") -> int:
        """What a request that signs someone in is answered with."""
        if self.posts_form:
            return 200
        return 303 if method == "POST" else 302

    def found(self, location: str, body: str) -> dict[str, str]:
        """The credentials in an answer: in the Location's query, or in a form the page posts."""
        values: dict[str, str] = {}
        for name, items in parse_qs(urlsplit(location).query, keep_blank_values=True).items():
            if name in self.credentials:
                [values[name]] = items
        for _, fields in form_posts(body):
            values |= {name: value for name, value in fields.items() if name in self.credentials}
        return values

    def claims(self, location: str, body: str = "") -> dict[str, Any]:
        """Whom the answer signs in, verified as the vendor verifies it; fails when the answer signs nobody in."""
        values = self.found(location, body)
        missing = [name for name in self.credentials if name not in values]
        assert not missing, f"{self.vendor}: no {', '.join(missing)} in the answer ({location[:120]!r})"
        return self.read(values)

    def email(self, location: str, body: str = "") -> str:
        """The email of the user the answer signs in, from the verified credentials."""
        return self.email_of(self.claims(location, body))


# (the function's settings, the vendor's key: a shared secret, or an RSA vendor's private key PEM) -> its side
PortalFactory = Callable[[Mapping[str, str], str], Portal]


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append((attributes.get("action", ""), {}))
        elif tag == "input" and self.forms and "name" in attributes:
            self.forms[-1][1][attributes["name"]] = attributes.get("value", "")


def form_posts(body: str) -> list[tuple[str, dict[str, str]]]:
    """Each form on a page: its action and its named fields."""
    if "<form" not in body:
        return []
    parser = _Forms()
    parser.feed(body)
    parser.close()
    return parser.forms


def hosts_of(*values: str) -> frozenset[str]:
    """Hosts from settings: URLs or comma-separated bare hosts, empty ones skipped."""
    found: set[str] = set()
    for value in values:
        for item in value.split(","):
            item = item.strip().lower()
            if item:
                found.add((urlsplit(item).hostname or "") if "://" in item else item)
    return frozenset(found - {""})


def first_of(hosts: str) -> str:
    """The first item of a comma-separated setting."""
    return hosts.split(",")[0].strip()


def plain_query(defaults: Mapping[str, str]) -> Callable[[Overrides], Query]:
    """A query of fixed values, each replaced or (None) left out on request."""

    def build(overrides: Overrides) -> Query:
        return {name: value for name, value in {**defaults, **overrides}.items() if value is not None}

    return build


def hs256_reader(name: str, key: str, **options: Any) -> Callable[[Mapping[str, str]], dict[str, Any]]:
    """The JWT in parameter ``name``, verified with ``key`` and HS256 only (its time claims are the stand-in's)."""

    def read(values: Mapping[str, str]) -> dict[str, Any]:
        claims: dict[str, Any] = jwt.decode(
            values[name], key, algorithms=["HS256"], options={"verify_exp": False}, **options
        )
        return claims

    return read


def simple_portal(vendor: str, host_setting: str, credential: str = "token") -> PortalFactory:
    """The simplest portal (HappyFox's): it sends nothing, and the answer is a redirect to ``host_setting``'s host
    with an HS256 JWT in ``credential``."""

    def make(env: Mapping[str, str], key: str) -> Portal:
        return Portal(
            vendor,
            params=(),
            build=plain_query({}),
            hosts=hosts_of(env.get(host_setting, "")),
            credentials=(credential,),
            read=hs256_reader(credential, key),
        )

    return make
