"""Fuzz target: the URL checks, ``sso_bridge.redirects.allowed_url``, ``sso_bridge.request.Query`` and
``request_url`` with the sign-in redirect built from it.

Only a ``BridgeError`` may come out of them. Beyond that:

- a URL ``allowed_url`` returns re-parses to https, an allowed host, no userinfo, no port, a path of its own,
  only safe characters, and passes ``allowed_url`` again unchanged;
- ``Query`` hands out each name once and never a value over the length asked for;
- ``request_url`` stays on the bridge's host, drops every ``login_token`` parameter, and comes back unchanged
  as the ``return_to`` of the sign-in redirect.

The first byte of an input picks the check: ``a`` allowed_url on the rest as text, ``b`` allowed_url on a URL
built from fuzzed parts, ``q`` Query on the rest, ``e`` request_url on an event with fuzzed path, query and
x-forwarded-proto; any other byte picks by its value. Text is decoded as the HTTP API delivers it, valid Unicode
(lone surrogates are tests/unit/test_hostile_events.py's).
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import atheris

from fuzz._harness import check, fuzz, instrument_module
from sso_bridge.http import Event

instrument_module(urllib.parse)
with atheris.instrument_imports(include=["sso_bridge"]):
    from sso_bridge.errors import BridgeError
    from sso_bridge.redirects import MAX_URL_LENGTH, allowed_url
    from sso_bridge.request import Query, login_redirect_url, request_url

HOSTS = frozenset({"yourworkspace.myclickfunnels.com", "help.example.com", "yourcompany.kustomer.help"})
DOMAIN = "abc123.execute-api.eu-west-1.amazonaws.com"
PLATFORM_LOGIN_URL = "https://platform.example.com/login"
_SAFE = re.compile(r"[!#$%&()*+,\-./0-9:;=?@A-Z\[\]^_a-z{|}~]+")
SCHEMES = ["https", "HTTPS", "http", "javascript", "", "hTTps", "https ", "ftp"]
SEPARATORS = ["://", "://", ":/", ":", "//", ":\\\\", ":///", "://\t"]
USERINFO = ["", "", "u@", "u:p@", "yourworkspace.myclickfunnels.com@", "@", "%40@", "a@b@"]
HOSTS_TRIED = [
    *sorted(HOSTS),
    "YOURWORKSPACE.MYCLICKFUNNELS.COM",
    "yourworkspace.myclickfunnels.com.",
    "yourworkspace.myclickfunnels.com.evil.example",
    "evil.example\\@help.example.com",
    "evil.example%2fhelp.example.com",
    "help.example.com%00",
    "evil.example",
    "127.0.0.1",
    "[::1]",
    "[help.example.com]",
    "",
]
PORTS = ["", "", ":443", ":", ":444", ":0443", ":abc", ":99999", ":-1", ":443:443"]
PATHS = ["", "/", "/a", "//evil.example", "/\\evil", "/%2e%2e/", "/./", "/?", "/#"]
PARAMETERS = ["login_token", "Login_token", "login%5Ftoken", "login+token", "login_token ", "redirect_to", "a"]


def text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def check_allowed(raw: str) -> None:
    try:
        url = allowed_url(raw, HOSTS)
    except BridgeError:
        return
    parts = urlsplit(url)
    check(parts.scheme == "https", f"{raw!r} -> {url!r}: scheme")
    check(parts.hostname in HOSTS, f"{raw!r} -> {url!r}: host")
    check(parts.netloc == parts.hostname, f"{raw!r} -> {url!r}: userinfo or port")
    check(parts.username is None and parts.password is None and parts.port is None, f"{raw!r} -> {url!r}")
    check(url.startswith(f"https://{parts.hostname}/"), f"{raw!r} -> {url!r}: not a path on the host")
    check(not parts.path.startswith("//"), f"{raw!r} -> {url!r}: protocol-relative path")
    check(len(url) <= MAX_URL_LENGTH and _SAFE.fullmatch(url), f"{raw!r} -> {url!r}: characters or length")
    check(allowed_url(url, HOSTS) == url, f"{raw!r} -> {url!r}: not a fixed point")


def built_url(fdp: atheris.FuzzedDataProvider) -> str:
    def part(choices: list[str]) -> str:
        # Mostly a known troublemaker, sometimes anything.
        return str(fdp.PickValueInList(choices) if fdp.ConsumeIntInRange(0, 3) else fdp.ConsumeUnicodeNoSurrogates(12))

    scheme, separator, userinfo = part(SCHEMES), part(SEPARATORS), part(USERINFO)
    host, port, path = part(HOSTS_TRIED), part(PORTS), part(PATHS)
    rest = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 80))
    return f"{scheme}{separator}{userinfo}{host}{port}{path}{rest}"


def check_query(raw: str) -> None:
    try:
        query = Query(raw)
        for name, limit in (("login_token", 4096), ("redirect_to", MAX_URL_LENGTH), ("a", 1)):
            value = query.get(name, max_length=limit)
            check(value is None or 0 < len(value) <= limit, f"{raw!r}: {name} of {len(value or '')} characters")
    except BridgeError:
        return


def check_request_url(fdp: atheris.FuzzedDataProvider) -> None:
    path = "/" + fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 40))
    proto = fdp.PickValueInList(["https", "http", "HTTP", "", "ftp", "https, http", fdp.ConsumeUnicodeNoSurrogates(8)])
    pairs = []
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        name = fdp.PickValueInList(PARAMETERS) if fdp.ConsumeBool() else fdp.ConsumeUnicodeNoSurrogates(8)
        pairs.append(f"{name}{fdp.PickValueInList(['=', '', '=='])}{fdp.ConsumeUnicodeNoSurrogates(16)}")
    raw_query = fdp.PickValueInList(["&", "&&", ";"]).join(pairs)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": {"x-forwarded-proto": proto} if proto else {},
        "requestContext": {"domainName": DOMAIN, "http": {"method": "GET", "path": path}, "stage": "$default"},
        "isBase64Encoded": False,
    }
    try:
        url = request_url(Event(event))
        location = login_redirect_url(PLATFORM_LOGIN_URL, url)
    except BridgeError:
        return
    parts = urlsplit(url)
    check(parts.scheme in ("http", "https"), f"{event!r} -> {url!r}: scheme")
    check(parts.hostname == DOMAIN, f"{event!r} -> {url!r}: host")
    # What a request line can carry: no raw '?' or '#' in the path, no '#' in the query (a browser keeps the
    # fragment), and no raw tab, CR or LF anywhere (urlsplit drops those, as browsers do, joining what they split).
    if not ("?" in path or "#" in path + raw_query or any(c in path + raw_query for c in "\t\r\n")):
        kept = [name for name, _ in parse_qsl(parts.query, keep_blank_values=True)]
        check("login_token" not in kept, f"{event!r} -> {url!r}: the stale login token survived")
    back = urlsplit(location)
    check((back.scheme, back.hostname, back.path) == ("https", "platform.example.com", "/login"), location)
    check(parse_qsl(back.query, keep_blank_values=True) == [("return_to", url)], f"{url!r} -> {location!r}")


def test_one_input(data: bytes) -> None:
    mode = chr(data[0]) if data else "a"
    if mode not in "abqe":
        mode = "abqe"[data[0] % 4]
    fdp = atheris.FuzzedDataProvider(data[1:])
    if mode == "a":
        check_allowed(text(data[1:]))
    elif mode == "b":
        check_allowed(built_url(fdp))
    elif mode == "q":
        check_query(text(data[1:]))
    else:
        check_request_url(fdp)


def main() -> None:
    fuzz(test_one_input)


if __name__ == "__main__":
    main()
