"""Mint a login token the way your platform would: ``make login-token EMAIL=you@example.com AUD=clickfunnels``.

Append it to a bridge link as ``?login_token=...``. The key is the login-token secret: ``--key``, else the
running local stack's own (its state file says where its emulated Secrets Manager is), else
``LOGIN_TOKEN_SECRET``. So a token minted while ``make run`` is up works without copying the key it printed,
and still after ``make rotate-login-key LOCAL=1``: ``LOGIN_TOKEN_SECRET`` only seeds the stack, and once it
runs, its secret's current version is the key (a rotation changes it, not the variable).

These are interactive tokens: the bridge accepts them for ``LOGIN_TOKEN_MAX_TTL`` (default 300 s), so the
default lifetime stays under it. Email links, which live days, are ``make link``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from collections.abc import Sequence
from typing import Any

import jwt

__all__ = ["DEFAULT_TTL", "main", "mint"]

DEFAULT_TTL = 120
MAX_TTL = 3600  # the bridge never accepts an interactive token living longer (INTERACTIVE_TTL_MAX)


def mint(email: str, audiences: Sequence[str], key: str, *, name: str | None = None, ttl: int = DEFAULT_TTL) -> str:
    """An HS256 login token for ``email``, valid ``ttl`` seconds, single ``jti``."""
    now = int(time.time())
    aud: str | list[str] = audiences[0] if len(audiences) == 1 else list(audiences)
    claims: dict[str, Any] = {
        "email": email,
        "aud": aud,
        "iat": now,
        "exp": now + ttl,
        "jti": secrets.token_urlsafe(16),
    }
    if name:
        claims["name"] = name
    return jwt.encode(claims, key, algorithm="HS256")


def _local_stack_key() -> str | None:
    """The key the running local stack verifies with (``AWSCURRENT`` of its secret); None when none runs."""
    from local.state import NoLocalStack, read_state

    try:
        read_state()
    except NoLocalStack:
        return None
    from ops.target import resolve  # the stack lookup pulls in boto3: only when a stack runs

    return resolve(True, "").login_token_key()


def main(argv: Sequence[str] | None = None) -> int:
    from ops.target import TargetError, vendors
    from sso_bridge.errors import BridgeError
    from sso_bridge.login_token import check_email, check_name

    parser = argparse.ArgumentParser(prog="python -m local.mint_login_token", description=__doc__.split("\n")[0])
    parser.add_argument("--email", required=True)
    parser.add_argument("--aud", required=True, help="vendor audience(s), comma-separated: clickfunnels,kustomer")
    parser.add_argument("--name")
    parser.add_argument("--ttl", type=int, default=DEFAULT_TTL, help="lifetime in seconds (default %(default)s)")
    parser.add_argument("--key", help="login-token key (default: the running local stack's, else $LOGIN_TOKEN_SECRET)")
    args = parser.parse_args(argv)
    try:
        check_email(args.email)
        name = check_name(args.name)
    except BridgeError as exc:
        parser.error(f"--email must be an address the bridge accepts, --name one line ({exc.reason})")
    known = vendors()
    audiences = [aud.strip() for aud in args.aud.split(",") if aud.strip()]
    if not audiences or not set(audiences) <= set(known):
        parser.error(f"--aud takes one or more of {', '.join(known)}, comma-separated")
    if not 0 < args.ttl <= MAX_TTL:
        parser.error(f"--ttl must be 1 to {MAX_TTL} seconds (the bridge caps interactive tokens, default 300)")
    key = args.key
    if not key:
        try:
            key = _local_stack_key() or os.environ.get("LOGIN_TOKEN_SECRET")
        except TargetError as exc:
            parser.error(f"a local stack seems to run, but its key cannot be read ({exc})")
    if not key:
        parser.error("no key: start the local stack (`make run`), or pass --key or set LOGIN_TOKEN_SECRET")
    print(mint(args.email, audiences, key, name=name, ttl=args.ttl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
