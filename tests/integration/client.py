"""A browser-like HTTP client that does not follow redirects, and the sign-in round trip every vendor shares.

Vendor tests start at their link and look at ``RoundTrip.final``: the bridge's answer once the demo
platform has signed the user in. An email link is spent as a browser spends it: ``press`` opens its page, then
posts the page's form back with the page's cookie and Chromium's headers.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.helpers import BUTTON_HEADERS, LinkPage

__all__ = ["Client", "Response", "RoundTrip", "query_param"]

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@dataclass(frozen=True)
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def location(self) -> str:
        location = self.headers.get("Location")
        assert location, f"expected a redirect, got {self.status} without Location"
        return location

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class RoundTrip:
    login_redirect: Response  # the bridge sending the user to sign in
    platform_redirect: Response  # the demo platform sending them back with a login token
    final: Response  # the bridge's answer to the link with the login token


def query_param(url: str, name: str) -> str:
    values = parse_qs(urlsplit(url).query, keep_blank_values=True)[name]
    assert len(values) == 1, f"{name} appears {len(values)} times in {url}"
    return values[0]


class Client:
    def request(
        self, method: str, url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        parts = urlsplit(url)
        assert parts.scheme == "http", f"the local stack speaks plain http: {url}"
        assert parts.hostname, url
        target = parts.path or "/"
        if parts.query:
            target += f"?{parts.query}"
        connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=15)
        try:
            sent = {"accept": BROWSER_ACCEPT, **{name.lower(): value for name, value in (headers or {}).items()}}
            connection.request(method, target, body=body, headers=sent)
            reply = connection.getresponse()
            return Response(reply.status, reply.headers, reply.read())
        finally:
            connection.close()

    def get(self, url: str, **headers: str) -> Response:
        return self.request("GET", url, headers=headers)

    def post_form(self, url: str, fields: dict[str, str]) -> Response:
        body = urlencode(fields).encode()
        return self.request("POST", url, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})

    def open_link(self, link: str) -> LinkPage:
        """An email link's confirmation page: its cookie and hidden field."""
        page = self.get(link)
        assert page.status == 200, (page.status, page.headers.get("Location"), page.text[:300])
        return LinkPage.of(page.headers.get_all("Set-Cookie") or [], page.text)

    def press(self, link: str, page: LinkPage | None = None, **headers: str) -> Response:
        """The reader presses Continue on ``page`` (opened now if not given): its form, its cookie, as Chromium
        sends them; ``headers`` replace Chromium's (an empty value leaves one out)."""
        page = page or self.open_link(link)
        sent = {**BUTTON_HEADERS, "cookie": page.cookie, **{k.lower().replace("_", "-"): v for k, v in headers.items()}}
        return self.request("POST", link, body=page.body.encode(), headers={k: v for k, v in sent.items() if v})

    def sign_in(self, link: str, *, email: str, name: str = "") -> RoundTrip:
        """Follow ``link`` as a signed-out user: to the demo platform, sign in, and back to the bridge."""
        login_redirect = self.get(link)
        assert login_redirect.status == 302, login_redirect.text
        form = self.get(login_redirect.location)
        assert form.status == 200, form.text
        platform_redirect = self.post_form(login_redirect.location, {"email": email, "name": name})
        assert platform_redirect.status == 302, platform_redirect.text
        final = self.get(platform_redirect.location)
        return RoundTrip(login_redirect, platform_redirect, final)
