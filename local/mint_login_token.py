"""Mint a login token the way your platform would: ``make login-token EMAIL=you@example.com AUD=clickfunnels``.

Append it to a bridge link as ``?login_token=...``. The key is the login-token secret: ``--key`` or
``LOGIN_TOKEN_SECRET`` (the value the local stack seeds its Secrets Manager with).
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

DEFAULT_TTL = 600


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.mint_login_token", description=__doc__.split("\n")[0])
    parser.add_argument("--email", required=True)
    parser.add_argument("--aud", required=True, help="vendor audience(s), comma-separated: clickfunnels,kustomer")
    parser.add_argument("--name")
    parser.add_argument("--ttl", type=int, default=DEFAULT_TTL, help="lifetime in seconds (default %(default)s)")
    parser.add_argument("--key", help="login-token key (default: $LOGIN_TOKEN_SECRET)")
    args = parser.parse_args(argv)
    key = args.key or os.environ.get("LOGIN_TOKEN_SECRET")
    if not key:
        parser.error("no key: pass --key or set LOGIN_TOKEN_SECRET (the stack prints it when it generates one)")
    if "@" not in args.email:
        parser.error("--email must be an email address, e.g. EMAIL=you@example.com")
    audiences = [aud.strip() for aud in args.aud.split(",") if aud.strip()]
    if not audiences or args.ttl <= 0:
        parser.error("--aud needs at least one audience and --ttl must be positive")
    print(mint(args.email, audiences, key, name=args.name, ttl=args.ttl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
