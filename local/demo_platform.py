"""A stand-in for your platform's sign-in page, so the whole round trip runs on one machine.

GET shows a form (email, optional name); POST mints a login token for every vendor audience and sends the
browser back to ``return_to`` with it. ``return_to`` must be on the local stack itself: the demo must not
become an open redirect that hands out tokens. Opened without ``return_to`` (from the index), it signs you
in all the same and then goes to the index, with no token: there is no link to hand one to.

Tokens live ``TOKEN_TTL`` seconds, well inside the bridge's ``LOGIN_TOKEN_MAX_TTL`` (300 by default), as a
platform's tokens for an interactive sign-in should.

The key is looked up at each sign-in when ``key`` is a function: ``secret_key`` reads the login-token secret's
current version, so the demo signs with the new key after ``make rotate-login-key LOCAL=1``, as a platform
handed it does. A string is used as it is, forever.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from html import escape
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from local.mint_login_token import mint
from local.pages import html_reply
from local.server import Reply, Request
from sso_bridge.redirects import with_query_param

__all__ = ["LOGIN_PATH", "DemoPlatform", "local_return_to", "secret_key"]

LOGIN_PATH = "/_platform/login"
TOKEN_TTL = 120
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1"})
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\\"'<>`]")
_EMAIL = re.compile(r"^[^\s@]+@[^\s@]+\.[^\s@]+$")


def local_return_to(raw: str | None, ports: Collection[int]) -> str | None:
    """``raw`` when it is a plain http URL on this stack (localhost or 127.0.0.1, one of ``ports``), else None."""
    if not raw or len(raw) > 4096 or _UNSAFE.search(raw):
        return None
    parts = urlsplit(raw)
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "http" or "@" in parts.netloc or parts.hostname not in _LOCAL_HOSTS or port not in ports:
        return None
    return raw


def secret_key(secret_id: str) -> Callable[[], str]:
    """A ``key`` for ``DemoPlatform``: ``AWSCURRENT`` of ``secret_id``, read at each call (boto3 follows the
    stack's ``AWS_ENDPOINT_URL``, its moto), so a rotation of the login-token key reaches the demo at once."""
    client: Any = None

    def key() -> str:
        nonlocal client
        if client is None:
            import boto3  # the stack has it loaded already; the demo's tests need none

            client = boto3.client("secretsmanager")
        return str(client.get_secret_value(SecretId=secret_id)["SecretString"])

    return key


class DemoPlatform:
    """The sign-in page at ``LOGIN_PATH``; ``__call__`` answers None for any other path.

    ``home`` is where a sign-in without ``return_to`` ends (the index). ``key`` is the login-token key, or a
    function returning the one in force (called at each sign-in that mints a token).
    """

    def __init__(
        self, *, key: str | Callable[[], str], audiences: Sequence[str], ports: Collection[int], home: str
    ) -> None:
        self._key = key
        self._audiences = list(audiences)
        self._ports = frozenset(ports)
        self._home = home

    def _destination(self, request: Request) -> tuple[str, bool] | None:
        """Where to go after sign-in and whether a token goes along; None for a ``return_to`` not on the stack."""
        values = parse_qs(request.query, keep_blank_values=True).get("return_to")
        if values is None:
            return self._home, False
        return_to = local_return_to(values[0], self._ports)
        return None if return_to is None else (return_to, True)

    def __call__(self, request: Request) -> Reply | None:
        if request.path != LOGIN_PATH:
            return None
        if request.method in ("GET", "HEAD"):
            return self._form(request)
        if request.method == "POST":
            return self._sign_in(request)
        reply = html_reply(405, "Method not allowed", "<h1>Method not allowed</h1>")
        reply.headers.append(("Allow", "GET, HEAD, POST"))
        return reply

    def _form(self, request: Request, *, error: str = "", email: str = "", name: str = "") -> Reply:
        destination = self._destination(request)
        if destination is None:
            return self._refuse_return_to()
        return_to, with_token = destination
        action = f"{LOGIN_PATH}?return_to={quote(return_to, safe='')}" if with_token else LOGIN_PATH
        then = f"<code>{escape(return_to)}</code>" if with_token else f'the <a href="{escape(return_to)}">index</a>'
        error_html = f"<p class=error>{escape(error)}</p>" if error else ""
        body = (
            "<h1>Sign in <span class=badge>demo platform</span></h1>"
            "<p class=muted>This page stands in for your platform's sign-in. No password: whoever you type is "
            "who the bridge signs in.</p>"
            f"{error_html}"
            f'<form method="post" action="{escape(action)}">'
            '<label for="email">Email</label>'
            f'<input id="email" name="email" type="email" required autofocus autocomplete="email" '
            f'value="{escape(email)}" placeholder="jane@example.com">'
            '<label for="name">Name <small>(optional)</small></label>'
            f'<input id="name" name="name" type="text" autocomplete="name" value="{escape(name)}" '
            'placeholder="Jane Doe">'
            '<button type="submit">Sign in and continue</button></form>'
            f"<p><small>Then back to {then}</small></p>"
        )
        return html_reply(400 if error else 200, "Sign in (demo platform)", body)

    def _sign_in(self, request: Request) -> Reply:
        destination = self._destination(request)
        if destination is None:
            return self._refuse_return_to()
        return_to, with_token = destination
        form = parse_qs(request.body.decode("utf-8", "replace"))
        email = form.get("email", [""])[0].strip()
        name = form.get("name", [""])[0].strip()
        if len(email) > 254 or not _EMAIL.match(email):
            return self._form(request, error="Please enter an email address.", email=email[:254], name=name[:200])
        location = return_to
        if with_token:
            key = self._key() if callable(self._key) else self._key
            token = mint(email, self._audiences, key, name=name[:200] or None, ttl=TOKEN_TTL)
            location = with_query_param(return_to, "login_token", token)
        return Reply(302, [("Location", location), ("Cache-Control", "no-store"), ("Referrer-Policy", "no-referrer")])

    @staticmethod
    def _refuse_return_to() -> Reply:
        body = (
            "<h1>Unknown destination</h1><p>The demo platform only sends you back to the local stack "
            "(<code>http://localhost</code> on one of its ports). Open a link from the "
            '<a href="/">index</a>.</p>'
        )
        return html_reply(400, "Unknown destination", body)
