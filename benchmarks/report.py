"""The bench's results as a table (stdout) and as JSON (.bench/results.json)."""

from __future__ import annotations

from typing import Any

__all__ = ["table"]


def table(results: dict[str, Any]) -> str:
    lines: list[str] = []
    warm = {row["case"]: row for row in results.get("warm", [])}
    cold = {row["case"]: row for row in results.get("cold", [])}
    cases = list(dict.fromkeys([*warm, *cold]))
    if cases:
        lines.append(
            f"{'flow':<24} {'event':<12} | {'warm µs':>8} {'floor µs':>8} {'extra µs':>8} {'ratio':>6} {'ex-db':>6} | "
            f"{'cold ms':>7} {'floor ms':>8} {'ratio':>6} | {'RSS MB':>6} {'floor':>6}"
        )
        lines.append("-" * len(lines[0]))
    for case in cases:
        w, c = warm.get(case), cold.get(case)
        any_row = w or c
        assert any_row is not None
        text = f"{any_row['flow']:<24} {any_row['event']:<12} | "
        if w:
            ex_db = f"{w['ratio_without_write']:5.1f}x" if w.get("ratio_without_write") else f"{'-':>6}"
            text += f"{w['handler_us']:8.0f} {w['floor_us']:8.0f} {w['extra_us']:8.0f} {w['ratio']:5.1f}x {ex_db} | "
        else:
            text += f"{'':8} {'':8} {'':8} {'':6} {'':6} | "
        text += (
            f"{c['handler_ms']:7.0f} {c['floor_ms']:8.0f} {c['ratio']:5.1f}x | "
            f"{c['handler_rss_mb']:6.1f} {c['floor_rss_mb']:6.1f}"
            if c
            else ""
        )
        lines.append(text.rstrip(" |"))
    if warm:
        lines.append(
            "ex-db: the ratio without the emulator's round trip for the write (moto's server, in both handler and"
            " floor)"
        )
    if cold:
        lines.append("")
        lines.append(
            f"{'cold start, medians':<37} | {'import ms':>9} {'1st req ms':>10} {'process ms':>10} | "
            f"{'modules':>7} {'floor':>5} | {'floor import ms':>15}"
        )
        for row in cold.values():
            lines.append(
                f"{row['flow']:<24} {row['event']:<12} | {row['handler_import_ms']:9.0f} "
                f"{row['handler_first_request_ms']:10.0f} {row['handler_process_ms']:10.0f} | "
                f"{row['handler_modules']:7d} {row['floor_modules']:5d} | {row['floor_import_ms']:15.0f}"
            )
        shown = set()
        for row in cold.values():
            if row["function"] in shown:
                continue
            shown.add(row["function"])
            lines.append("")
            lines.append(
                f"import time, {row['function']} cold start ({row['case']}; {row['imported_during_cold_start']} "
                "modules imported), top by cumulative µs:"
            )
            for entry in row["importtime_top"]:
                lines.append(f"  {entry['cumulative_us']:9d}  {entry['module']}")
    links = results.get("links")
    if links:
        lines.append("")
        lines.append(
            f"batch links : {links['rows_per_s']:8.0f} rows/s vs csv read+write {links['floor_rows_per_s']:7.0f} "
            f"rows/s  ratio {links['ratio']:5.1f}x  ({links['rows']} rows)"
        )
    load = results.get("load")
    if load:
        lines.append(
            f"local stack : {load['requests_per_s']:8.0f} requests/s, {load['clients']} clients, "
            f"{load['seconds']:g} s: p50 {load['p50_ms']:.1f} ms, p99 {load['p99_ms']:.1f} ms, "
            f"{load['errors']} errors ({load['requests']} requests)"
        )
    return "\n".join(lines)
