"""`make links` throughput: minting a CSV of generated contacts through the real CSV path (temporary files)
against reading and writing the same rows with the csv module alone. A mailing must not wait on us: the budget
is 50,000 rows/s on the project's 2-core machines. In this process (the dev venv): ops.link runs there.
"""

from __future__ import annotations

import csv
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

from tests.helpers import LOGIN_TOKEN_KEY

__all__ = ["link_batch"]


def best_of(fn: Any, number: int, repeat: int = 5) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def link_batch(rows: int = 200_000, repeat: int = 3) -> dict[str, Any]:
    """Rows per second: minting links for a contacts CSV, and copying that CSV with two columns more."""
    from ops.link_csv import mint_csv
    from ops.link_tokens import LinkMinter

    with tempfile.TemporaryDirectory(prefix="sso-bridge-bench-") as tmp:
        contacts, links, copy = Path(tmp, "contacts.csv"), Path(tmp, "links.csv"), Path(tmp, "copy.csv")
        with contacts.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["Email", "First Name", "Last Name", "Company"])
            for i in range(rows):
                writer.writerow([f"user{i}@example.com", "Jane", f"Doe {i}", "Acme, Inc."])

        def floor() -> None:
            with contacts.open(newline="", encoding="utf-8-sig") as text, copy.open("w", newline="") as out:
                writer = csv.writer(out)
                for row in csv.reader(text):
                    writer.writerow([*row, "", ""])

        minter = LinkMinter(
            LOGIN_TOKEN_KEY,
            vendor="clickfunnels",
            function_url="https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws/",
            issued_at=int(time.time()),
            ttl=7 * 86400,
            campaign="spring-sale",
        )
        reports: list[str] = []
        base = best_of(floor, 1, repeat=repeat) / rows
        full = best_of(lambda: mint_csv(contacts, links, minter, report=reports.append), 1, repeat=repeat) / rows
        with links.open(newline="", encoding="utf-8") as text:
            minted = sum(1 for row in csv.DictReader(text) if row["link"])
    return {
        "rows": rows,
        "rows_per_s": 1 / full,
        "floor_rows_per_s": 1 / base,
        "ratio": full / base,
        "rows_with_link": minted,
        "rows_refused": len(reports),
    }
