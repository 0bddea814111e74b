"""Read the jti table: was this token ours, when, for whom, from where.

    python -m ops.audit --email jane@example.com [--json] [--table NAME]
    python -m ops.audit --jti=9f2c... [--json]

The table comes from ``--table`` or ``JTI_TABLE_NAME`` (stack output ``JtiTableName``); credentials, region
and ``AWS_ENDPOINT_URL`` (the local stack's moto server) come from the usual boto3 chain. Exit status: 0 when
records were found, 1 when none, 2 for usage errors, 3 when the table cannot be read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TextIO

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

__all__ = ["COLUMNS", "by_email", "by_jti", "main", "render_table"]

EMAIL_INDEX = "by-email"  # sso_bridge.jti_store.EMAIL_INDEX; ops does not import the Lambda layer
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
    "user_agent",
)
_TIMES = ("issued_at", "expires_at", "purge_at")
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
            ExpressionAttributeValues={":email": {"S": email.strip().lower()}},
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
    return "" if value is None else _printable(str(value))


def render_table(records: Sequence[Mapping[str, Any]], out: TextIO) -> None:
    rows = [[_cell(record, column) for column in COLUMNS] for record in records]
    widths = [max(len(column), *(len(row[i]) for row in rows)) for i, column in enumerate(COLUMNS)]
    for cells in ([c.upper() for c in COLUMNS], *rows):
        out.write("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip() + "\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ops.audit", description="Look up issued HappyFox tokens.")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--email", help="every token issued to this email, newest first")
    which.add_argument("--jti", help="the token with this jti, if this bridge issued it")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--table", default=os.environ.get("JTI_TABLE_NAME"), help="table name (JTI_TABLE_NAME)")
    return parser


def main(argv: Sequence[str] | None = None, *, client: DynamoDBClient | None = None, out: TextIO = sys.stdout) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.table:
        parser.error("set JTI_TABLE_NAME or pass --table (the stack output JtiTableName)")
    if (args.email or args.jti or "").strip() == "":
        parser.error("--email and --jti need a value")
    client = client or boto3.client("dynamodb")
    try:
        records = by_jti(client, args.table, args.jti) if args.jti else by_email(client, args.table, args.email)
    except (BotoCoreError, ClientError) as exc:
        print(f"cannot read table {args.table}: {exc}", file=sys.stderr)
        return 3
    if args.json:
        json.dump(records, out, indent=2, sort_keys=True)
        out.write("\n")
    elif records:
        render_table(records, out)
    if not records:
        what = f"jti {args.jti}" if args.jti else f"email {args.email}"
        print(f"no token issued for {what} in {args.table}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
