"""Read the jti table: was this token ours, when, for whom, from where, and for which vendor.

    python -m ops.audit --email jane@example.com [--json] [--table NAME | --local | --stack-name NAME]
    python -m ops.audit --jti=9f2c... [--json]

Where the table is: ``--local`` reads the running ``make run`` stack (its state file names the table and
moto's endpoint, so nothing has to be exported). Otherwise ``--table``, else ``JTI_TABLE_NAME``, else the
output ``JtiTableName`` of the stack named by ``--stack-name`` or ``STACK_NAME`` (``make audit`` always
passes one); credentials and region come from the usual boto3 chain.

The vendors whose functions record every token they sign before it leaves (those with ``JTI_TABLE_NAME`` in
template.yaml: HappyFox and Zendesk) share the table; each record names its vendor. A stack running none of them
has no table, and says so with the switch to flip.

Exit status: 0 when records were found, 1 when none (one line on stderr says so), 2 for usage errors, 3
when the table cannot be found or read. Scripts rely on 1 meaning "not ours"; ``make audit`` turns it into
success after printing that line, because make can only fail with its own status 2 and its own error noise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import boto3
from boto3.dynamodb.types import TypeDeserializer

from local.template import functions
from ops.target import EXIT_TARGET, Target, TargetError, add_target_arguments, aws_errors, resolve
from ops.vendor_template import vendor_templates
from sso_bridge.jti_store import EMAIL_INDEX
from sso_bridge.login_token import email_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

__all__ = ["COLUMNS", "JTI_TABLE", "by_email", "by_jti", "main", "recording_vendors", "render_table"]

COLUMNS = (
    "issued_at",
    "jti",
    "vendor",
    "email",
    "name",
    "source_ip",
    "request_id",
    "login_jti",
    "expires_at",
    "smoke",  # "yes": issued to `make smoke`'s reserved address (SMOKE_EMAIL), not to a person
    "user_agent",
)
_TIMES = ("issued_at", "expires_at", "purge_at")
JTI_TABLE = "JTI_TABLE_NAME"  # the function variable naming the table, as each recording vendor's function reads it
_deserializer = TypeDeserializer()


def _plain(item: Mapping[str, AttributeValueTypeDef]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name, value in item.items():
        plain = _deserializer.deserialize(value)
        if isinstance(plain, Decimal):
            plain = int(plain)
        record[name] = plain
    return record


def by_jti(client: DynamoDBClient, table: str, jti: str) -> list[dict[str, Any]]:
    item = client.get_item(TableName=table, Key={"jti": {"S": jti}}, ConsistentRead=True).get("Item")
    return [_plain(item)] if item else []


def by_email(client: DynamoDBClient, table: str, email: str) -> list[dict[str, Any]]:
    """Every record for ``email`` (any capitalisation), newest first."""

    def pages() -> Iterator[dict[str, Any]]:
        paginator = client.get_paginator("query")
        for page in paginator.paginate(
            TableName=table,
            IndexName=EMAIL_INDEX,
            KeyConditionExpression="email_lower = :email",
            ExpressionAttributeValues={":email": {"S": email_key(email.strip())}},
            ScanIndexForward=False,
        ):
            for item in page.get("Items", []):
                yield _plain(item)

    return list(pages())


def _iso(seconds: object) -> str:
    if not isinstance(seconds, int):
        return ""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _printable(text: str) -> str:
    # User agents are the client's own words: never let one move the cursor in an operator's terminal.
    return "".join(char if char.isprintable() else f"\\x{ord(char):02x}" for char in text)


def _cell(record: Mapping[str, Any], column: str) -> str:
    value = record.get(column)
    if column in _TIMES:
        return _iso(value)
    if column == "smoke":
        return "yes" if value is True else ""
    return "" if value is None else _printable(str(value))


def render_table(records: Sequence[Mapping[str, Any]], out: TextIO) -> None:
    rows = [[_cell(record, column) for column in COLUMNS] for record in records]
    widths = [max(len(column), *(len(row[i]) for row in rows)) for i, column in enumerate(COLUMNS)]
    for cells in ([c.upper() for c in COLUMNS], *rows):
        out.write("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip() + "\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ops.audit",
        description="Look up the vendor tokens this bridge signed and recorded (its jti table): for whom, when, where.",
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--email", help="every token issued to this email, newest first")
    which.add_argument("--jti", help="the token with this jti, if this bridge issued it")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--table", help="table name (default: $JTI_TABLE_NAME, else the stack output JtiTableName)")
    # No default stack here: without --stack-name or STACK_NAME, a missing table name is a usage error.
    add_target_arguments(parser)
    return parser


def _where(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[str, DynamoDBClient | None]:
    """The table, and a client aimed at it when the target chose one (``None``: the default chain)."""
    if args.local:
        target = resolve(True, "")
        return args.table or _table(target), target.dynamodb()
    table = args.table or os.environ.get("JTI_TABLE_NAME", "").strip()
    if table:
        return table, None
    if not args.stack_name:
        parser.error("pass --table, set JTI_TABLE_NAME, or name the stack (--stack-name) to use its JtiTableName")
    target = resolve(False, args.stack_name)
    return _table(target), target.dynamodb()


def recording_vendors(template: dict[str, object] | None = None) -> list[str]:
    """The vendors whose functions record each token they sign (their ``JTI_TABLE_NAME``), in template order."""
    return list(
        dict.fromkeys(Path(spec.code_uri).name for spec in functions(template) if JTI_TABLE in spec.environment)
    )


def _table(target: Target) -> str:
    """The target's jti table; a stack without one because it runs no vendor that records tokens says which
    switch (or ``VENDORS``) would give it one, rather than to redeploy."""
    if target.resources.get(JTI_TABLE, "").strip():
        return target.resource(JTI_TABLE)
    recording = recording_vendors()
    if not recording or any(vendor in target.vendors for vendor in recording):
        return target.resource(JTI_TABLE)  # a recording vendor is on: the stack itself is out of date
    named = " and ".join(recording)
    if target.local:
        raise TargetError(
            f"{target.where} has no jti table: only {named} record the tokens they sign, and it runs without them "
            f"(restart `make run` with one of them in VENDORS)"
        )
    templates = vendor_templates()
    switches = " and ".join(
        f"{templates[vendor].switch}=false" if vendor in templates else f"no {vendor}" for vendor in recording
    )
    raise TargetError(
        f"{target.where} has no jti table: only {named} record the tokens they sign, and it was deployed with "
        f"{switches}"
    )


def main(argv: Sequence[str] | None = None, *, client: DynamoDBClient | None = None, out: TextIO = sys.stdout) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if (args.email or args.jti or "").strip() == "":
        parser.error("--email and --jti need a value")
    try:
        table, chosen = _where(args, parser)
        with aws_errors(f"cannot read table {table}"):
            client = client or chosen or boto3.client("dynamodb")
            records = by_jti(client, table, args.jti) if args.jti else by_email(client, table, args.email)
    except TargetError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_TARGET
    if args.json:
        json.dump(records, out, indent=2, sort_keys=True)
        out.write("\n")
    elif records:
        render_table(records, out)
    if not records:
        what = f"jti {_printable(args.jti)}" if args.jti else f"email {_printable(args.email.strip())}"
        print(
            f"no token issued for {what}: not in {table} (not from this bridge, or its record expired)", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
