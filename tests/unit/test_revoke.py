"""`make revoke`: the not-before the bridge reads, so links issued up to now stop and later ones work."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from ops import link as link_cli
from ops import revoke as revoke_cli
from sso_bridge.link_store import LinkState, LinkStore
from tests.helpers import LINK_REVOCATIONS_TABLE_NAME, LOGIN_TOKEN_KEY, SPENT_LINKS_TABLE_NAME
from tests.unit.test_target import STACK, create_bridge_stack


@pytest.fixture
def stack(link_tables: Any) -> Any:
    create_bridge_stack()
    return link_tables


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = revoke_cli.main([*argv, "--stack-name", STACK], out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def state(email: str, issued_at: int, jti: str = "0123456789abcdef0123456789abcdef") -> LinkState:
    """What the bridge's confirmation page reads for a link issued to ``email`` at ``issued_at``."""
    return LinkStore(SPENT_LINKS_TABLE_NAME, LINK_REVOCATIONS_TABLE_NAME).state(
        jti=jti, email=email, issued_at=issued_at
    )


def minted_link_claims(email: str) -> dict[str, Any]:
    out = io.StringIO()
    assert link_cli.main(["--provider", "clickfunnels", "--email", email, "--stack-name", STACK], out=out) == 0
    [token] = parse_qs(urlsplit(out.getvalue().strip()).query)["login_token"]
    claims: dict[str, Any] = jwt.decode(token, LOGIN_TOKEN_KEY, algorithms=["HS256"], audience="clickfunnels")
    return claims


def test_links_issued_before_are_revoked_and_later_ones_work(stack: Any) -> None:
    # Given a link minted for Jane, usable
    claims = minted_link_claims("jane@example.com")
    assert state("jane@example.com", claims["iat"], claims["jti"]) is LinkState.USABLE

    # When the operator revokes her links (another capitalisation)
    status, out, err = run("--email", "Jane@Example.COM")
    item = stack.get_item(TableName=LINK_REVOCATIONS_TABLE_NAME, Key={"email_lower": {"S": "jane@example.com"}})
    revoked_at = int(item["Item"]["not_before"]["N"])

    # Then that link is refused, as is any issued up to the revocation, while a later one works
    assert (status, err) == (0, "")
    assert state("jane@example.com", claims["iat"], claims["jti"]) is LinkState.REVOKED
    assert state("JANE@example.com", revoked_at) is LinkState.REVOKED
    assert state("jane@example.com", revoked_at + 1) is LinkState.USABLE
    # And other people's links are untouched
    assert state("bob@example.com", claims["iat"]) is LinkState.USABLE

    # And the operator is told what happened, when, and that new links work
    def iso(seconds: int) -> str:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    assert out == (
        f"revoked every link issued to jane@example.com up to {iso(revoked_at)} on stack {STACK} in eu-west-1; "
        f"links minted from {iso(revoked_at + 1)} on work as usual\n"
    )


def test_the_record_is_the_one_the_bridge_reads(stack: Any) -> None:
    before = int(time.time())
    assert run("--email", "jane@example.com")[0] == 0
    item = stack.get_item(TableName=LINK_REVOCATIONS_TABLE_NAME, Key={"email_lower": {"S": "jane@example.com"}})
    not_before = int(item["Item"]["not_before"]["N"])
    assert before <= not_before <= time.time()
    # Kept longer than any link can live, then purged by the table's TTL
    assert int(item["Item"]["expires_at"]["N"]) >= not_before + 30 * 86400


def test_revoking_again_moves_the_line_forward(stack: Any) -> None:
    revoke_cli.revoke(LinkStore(SPENT_LINKS_TABLE_NAME, LINK_REVOCATIONS_TABLE_NAME), "jane@example.com", now=1000)
    assert state("jane@example.com", 1500) is LinkState.USABLE
    revoke_cli.revoke(LinkStore(SPENT_LINKS_TABLE_NAME, LINK_REVOCATIONS_TABLE_NAME), "jane@example.com", now=2000)
    assert state("jane@example.com", 1500) is LinkState.REVOKED
    assert state("jane@example.com", 2001) is LinkState.USABLE


@pytest.mark.parametrize("email", ["", "not-an-email", "jane@example", "a b@example.com", "$(touch x)@example.com"])
def test_an_address_the_bridge_would_never_see_is_a_usage_error(stack: Any, email: str) -> None:
    status, out, err = run(f"--email={email}")
    assert (status, out) == (2, "")
    assert "--email is not an address the bridge accepts" in err
    assert stack.scan(TableName=LINK_REVOCATIONS_TABLE_NAME)["Count"] == 0


def test_a_stack_without_the_revocations_table_exits_3(link_tables: Any) -> None:
    create_bridge_stack(drop_outputs=("LinkRevocationsTableName",))
    status, out, err = run("--email", "jane@example.com")
    assert (status, out) == (3, "")
    assert err == (
        "python -m ops.revoke: error: stack bridge-under-test in eu-west-1 has no output LinkRevocationsTableName: "
        "deploy the current template.yaml\n"
    )


def test_an_unwritable_table_exits_3_with_one_line(aws: Any) -> None:
    create_bridge_stack()  # the outputs name tables that do not exist
    status, _, err = run("--email", "jane@example.com")
    assert status == 3
    assert err.startswith(f"python -m ops.revoke: error: cannot write the revocation to {LINK_REVOCATIONS_TABLE_NAME}")
    assert "ResourceNotFoundException" in err
    assert err.count("\n") == 1
