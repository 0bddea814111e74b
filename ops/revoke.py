"""Withdraw every email link issued to one address: ``make revoke EMAIL=jane@example.com [LOCAL=1]``.

    python -m ops.revoke --email jane@example.com [--local] [--stack-name NAME]

For a link forwarded to the wrong person, or a mailing sent by mistake. Links cannot be recalled from
inboxes, so the bridge keeps a "not before" time per address (``LinkStore.revoke``): every link issued to
the address up to that second is refused on click (the owner is sent through the normal sign-in instead),
and links minted afterwards work as usual, so a corrected mailing needs no other step. Interactive sign-ins
are not affected. The address is checked with the bridge's own rule, so a typo is refused rather than
recorded as a revocation nobody's link will ever match, and a look-alike (``Kate`` typed with the Kelvin sign,
which ``str.lower`` turns into ``kate``) is refused rather than withdrawing someone else's links. Capitalisation
does not matter: the key is ``email_key``'s, the one the bridge reads at spend.

Exit status: 0 revoked, 2 usage error, 3 the bridge's resources cannot be reached.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

from ops.target import EXIT_TARGET, EXIT_USAGE, TargetError, add_target_arguments, aws_errors, resolve
from sso_bridge.errors import BridgeError
from sso_bridge.link_store import LinkStore
from sso_bridge.login_token import check_email, email_key

__all__ = ["main", "revoke"]


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def revoke(store: LinkStore, email: str, *, now: int | None = None) -> int:
    """Withdraw ``email``'s links issued up to ``now`` (default: this second); returns that time."""
    revoked_at = int(time.time()) if now is None else now
    store.revoke(email, now=revoked_at)
    return revoked_at


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    parser = argparse.ArgumentParser(
        prog="python -m ops.revoke",
        description="Withdraw every email link issued to an address until now; links minted later still work.",
        epilog="Exit status: 0 revoked, 2 usage error, 3 the bridge's resources unreachable.",
    )
    parser.add_argument("--email", required=True, help="the address whose links to withdraw")
    add_target_arguments(parser, default_stack="sso-bridge")
    args = parser.parse_args(argv)
    email = args.email.strip()
    try:
        check_email(email)
    except BridgeError as exc:
        why = f"{exc.reason}: {exc.detail}" if exc.detail else exc.reason
        print(f"{parser.prog}: error: --email is not an address the bridge accepts ({why})", file=err)
        return EXIT_USAGE
    try:
        target = resolve(args.local, args.stack_name)
        store = LinkStore(
            target.resource("SPENT_LINKS_TABLE_NAME"),
            target.resource("LINK_REVOCATIONS_TABLE_NAME"),
            client=target.dynamodb(),
        )
        with aws_errors(f"cannot write the revocation to {store.revocations_table} ({target.where})"):
            revoked_at = revoke(store, email)
    except TargetError as exc:
        print(f"{parser.prog}: error: {exc}", file=err)
        return EXIT_TARGET
    print(
        f"revoked every link issued to {email_key(email)} up to {_iso(revoked_at)} on {target.where}; "
        f"links minted from {_iso(revoked_at + 1)} on work as usual",
        file=out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
