"""`make revoke`: the not-before the bridge reads, so links issued up to now stop and later ones work."""

from __future__ import annotations

import ast
import io
import json
import time
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from ops import link as link_cli
from ops import revoke as revoke_cli
from sso_bridge.link_store import LinkSpend, LinkState, LinkStore
from tests.helpers import (
    LINK_REVOCATIONS_TABLE_NAME,
    LOGIN_TOKEN_KEY,
    SPENT_LINKS_TABLE_NAME,
    LambdaContext,
    load_event,
    make_login_token,
)
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


# --- look-alike addresses: one rule for an address, one key for it ---------------------------------------------------

KELVIN_KATE = "\u212aate@example.com"  # "Kate" with the Kelvin sign: str.lower() turns it into kate@example.com
# Addresses the bridge refuses: a character NFKC maps to another (a compatibility look-alike), or an accent not
# composed. Each would otherwise be keyed as, or mistaken for, the address it imitates.
LOOK_ALIKES = {
    "kelvin-sign": KELVIN_KATE,
    "fullwidth-k": "\uff4bate@example.com",
    "long-s": "\u017fam@example.com",
    "angstrom-sign": "\u212bsa@example.com",
    "decomposed-umlaut": "ka\u0308te@example.com",
}


def open_link(module: ModuleType, email: str, accept: str = "text/html") -> dict[str, Any]:
    """GET an email link for ``email`` on the ClickFunnels function URL, as the reader's browser does."""
    token = make_login_token(email, use="link", jti="link-0123456789abcdef", lifetime=86400)
    event = load_event("clickfunnels-sso-function-url", query=f"login_token={token}", headers={"accept": accept})
    response: dict[str, Any] = module.lambda_handler(event, LambdaContext())
    return response


@pytest.mark.parametrize("email", LOOK_ALIKES.values(), ids=LOOK_ALIKES.keys())
def test_a_look_alike_address_is_refused_as_the_bridge_refuses_it_and_revokes_nothing(
    stack: Any, load_function: Callable[..., ModuleType], email: str
) -> None:
    """Given Kate's link, when the operator runs `make revoke EMAIL=<K>ate@example.com` with the Kelvin sign (or
    another look-alike), then it exits 2 naming the bridge's reason and writes nothing; Kate's link still opens its
    page, and a link made out to the look-alike itself is refused by the bridge for the same reason."""
    module = load_function("clickfunnels")
    imitated = unicodedata.normalize("NFKC", email).lower()

    status, out, err = run(f"--email={email}")

    assert (status, out) == (2, "")
    assert "is not an address the bridge accepts (email_invalid" in err
    assert err.count("\n") == 1
    assert stack.scan(TableName=LINK_REVOCATIONS_TABLE_NAME)["Count"] == 0
    assert open_link(module, imitated)["statusCode"] == 200  # the confirmation page: not withdrawn
    refused = open_link(module, email, accept="application/json")
    assert (refused["statusCode"], json.loads(refused["body"])["reason"]) == (400, "email_invalid")


def _spend(email: str, issued_at: int, jti: str) -> LinkState:
    spend = LinkSpend(
        jti=jti,
        vendor="clickfunnels",
        email=email,
        campaign=None,
        issued_at=issued_at,
        expires_at=issued_at + 86400,
        spent_at=issued_at,
        request_id="request-1",
        source_ip="192.0.2.1",
        user_agent="test",
    )
    return LinkStore(SPENT_LINKS_TABLE_NAME, LINK_REVOCATIONS_TABLE_NAME).spend(spend)


def test_revoking_kate_withdraws_kates_links_in_any_capitalisation_and_no_one_elses(stack: Any) -> None:
    """The revocation is written and read under one key, made by one function: kate@ in any capitalisation is
    withdrawn, on the page and at the spend; an address that only folds into hers (the Kelvin sign) is not hers."""
    assert run("--email", "Kate@Example.com")[0] == 0
    [item] = stack.scan(TableName=LINK_REVOCATIONS_TABLE_NAME)["Items"]
    assert item["email_lower"] == {"S": "kate@example.com"}
    revoked_at = int(item["not_before"]["N"])

    for kate in ("kate@example.com", "KATE@example.COM"):
        assert state(kate, revoked_at) is LinkState.REVOKED
        assert _spend(kate, revoked_at, f"kate-{kate}-0123456789") is LinkState.REVOKED
    for someone_else in (KELVIN_KATE, "katie@example.com", "kate@example.org"):
        assert state(someone_else, revoked_at) is LinkState.USABLE
        assert _spend(someone_else, revoked_at, f"other-{someone_else}-0123456789") is LinkState.USABLE


_ROOT = Path(__file__).resolve().parents[2]
_FOLDS = {"lower", "casefold", "upper"}


def _an_email(node: ast.expr) -> bool:
    """``email``, ``spend.email``, ``args.email.strip()``: an address, as the code names it."""
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr.endswith("strip"):
        node = node.func.value
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return "email" in name.lower()


def _key_calls(node: ast.expr) -> bool:
    """``{"S": email_key(...)}``: the key made by the one function."""
    if not isinstance(node, ast.Dict) or len(node.values) != 1:
        return False
    value = node.values[0]
    return isinstance(value, ast.Call) and getattr(value.func, "id", getattr(value.func, "attr", "")) == "email_key"


def test_email_key_is_the_only_code_that_folds_an_address() -> None:
    """Every address that becomes a key (the revocations, the spent links, the audit index; revoke's and audit's
    look-ups) goes through ``sso_bridge.login_token.email_key``: no other ``.lower()`` of an email in the layer,
    the functions or the operator commands, and every ``email_lower`` key and ``:email`` look-up is built by it."""
    files = [
        *(_ROOT / "layers" / "signing" / "sso_bridge").glob("*.py"),
        *(_ROOT / "ops").glob("*.py"),
        *(_ROOT / "functions").rglob("*.py"),
    ]
    folds: list[str] = []
    keys: list[str] = []
    built: set[str] = set()
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        exempt = {
            id(node)
            for function in ast.walk(tree)
            if isinstance(function, ast.FunctionDef) and function.name == "email_key"
            for node in ast.walk(function)
        }
        where = path.relative_to(_ROOT)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in _FOLDS
                and _an_email(node.func.value)
                and id(node) not in exempt
            ):
                folds.append(f"{where}:{node.lineno}")
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if not (isinstance(key, ast.Constant) and key.value in ("email_lower", ":email")):
                        continue
                    if _key_calls(value):
                        built.add(where.as_posix())
                    else:
                        keys.append(f"{where}:{key.lineno}")
    assert folds == []
    assert keys == []
    assert built == {
        "layers/signing/sso_bridge/link_store.py",
        "layers/signing/sso_bridge/jti_store.py",
        "ops/audit.py",
    }
