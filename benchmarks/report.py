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
            f"{'flow':<24} {'event':<12} | {'warm µs':>8} {'floor µs':>8} {'extra µs':>8} {'ratio':>6} {'ex-io':>6} | "
            f"{'cold ms':>7} {'floor ms':>8} {'ratio':>6} | {'RSS MB':>6} {'floor':>6}"
        )
        lines.append("-" * len(lines[0]))
    for case in cases:
        w, c = warm.get(case), cold.get(case)
        any_row = w or c
        assert any_row is not None
        text = f"{any_row['flow']:<24} {any_row['event']:<12} | "
        if w:
            ex_io = w.get("ratio_without_io", w.get("ratio_without_write"))
            ex_io_text = f"{ex_io:5.1f}x" if ex_io else f"{'-':>6}"
            text += (
                f"{w['handler_us']:8.0f} {w['floor_us']:8.0f} {w['extra_us']:8.0f} {w['ratio']:5.1f}x {ex_io_text} | "
            )
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
        engine = results.get("runtime", {}).get("dynamodb") or "moto"
        lines.append(
            "ex-io: the ratio without the floor's round trips to the emulators, in both handler and floor: the"
            f" DynamoDB write ({engine}); for the OIDC callback also the stand-in provider's token endpoint"
        )
    described = set()
    for row in warm.values():
        # Each flow's floor once (benchmarks/flows.py); the OIDC callback's with its round trips.
        if not row.get("floor") or row["flow"] in described:
            continue
        described.add(row["flow"])
        io = ""
        if row["case"].startswith("oidc-") and row.get("floor_io_us"):
            io = f" (of it: write {row['floor_write_us']:.0f} µs, token request {row['floor_token_us']:.0f} µs)"
        lines.append(f"  {row['flow']} floor: {row['floor']}{io}")
    if any(row["case"].startswith("oidc-callback") for row in cold.values()):
        lines.append(
            "  OIDC callback cold floor: import boto3, jwt, joserfc (cryptography), 2 secrets, discovery, key set,"
            " then the warm floor's work"
        )
    if cold:
        lines.append("")
        lines.append(
            f"{'cold start, medians':<37} | {'import ms':>9} {'1st req ms':>10} {'process ms':>10} | "
            f"{'modules':>7} {'floor':>5} | {'floor import ms':>15} | {'crypto':>6} {'floor':>5}"
        )

        def yes_no(value: Any) -> str:
            return {True: "yes", False: "no"}.get(value, "?")

        for row in cold.values():
            lines.append(
                f"{row['flow']:<24} {row['event']:<12} | {row['handler_import_ms']:9.0f} "
                f"{row['handler_first_request_ms']:10.0f} {row['handler_process_ms']:10.0f} | "
                f"{row['handler_modules']:7d} {row['floor_modules']:5d} | {row['floor_import_ms']:15.0f} | "
                f"{yes_no(row.get('cryptography_loaded')):>6} {yes_no(row.get('floor_cryptography_loaded')):>5}"
            )
        lines.append(
            "crypto: cryptography in sys.modules after the first request, handler and floor (only an OIDC callback"
            " and an RS256 signer, Freshworks, may load it: from the OIDC layer's folder)"
        )
        shown = set()
        for row in cold.values():
            # Once per function, and once more for the OIDC callback (its first request imports joserfc).
            key = (row["function"], row["case"].startswith("oidc-callback"))
            if key in shown:
                continue
            shown.add(key)
            lines.append("")
            lines.append(
                f"import time, {row['function']} cold start ({row['case']}; {row['imported_during_cold_start']} "
                "modules imported), top by cumulative µs:"
            )
            for entry in row["importtime_top"]:
                lines.append(f"  {entry['cumulative_us']:9d}  {entry['module']}")
            if row.get("first_request_imports"):
                lines.append(
                    f"  of them during the first request: {row['first_request_modules']} modules, "
                    f"{row['first_request_import_us']} µs; top level:"
                )
                for entry in row["first_request_imports"]:
                    lines.append(f"  {entry['cumulative_us']:9d}  {entry['module']}")
    jose = results.get("jose")
    if jose:
        lines.append("")
        lines.extend(jose_table(jose))
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


def jose_table(jose: dict[str, Any]) -> list[str]:
    """The RS256 ID-token check per library (benchmarks/jose.py)."""
    versions = jose["versions"]
    lines = [
        f"RS256 ID-token check, runtime venv (cryptography {versions.get('cryptography')}, joserfc "
        f"{versions.get('joserfc')}, PyJWT {versions.get('pyjwt')}, authlib {versions.get('authlib')}):",
        f"{'library':<37} | {'cold ms':>7} {'import+key':>10} | {'warm µs':>7} | {'modules':>7} {'RSS MB':>6}",
    ]
    for row in jose["libraries"]:
        lines.append(
            f"{row['label']:<37} | {row['cold_ms']:7.1f} {row['cold_setup_ms']:10.1f} | {row['warm_us']:7.0f} | "
            f"{row['modules']:7d} {row['rss_mb']:6.1f}"
        )
    lines.append(
        f"joserfc parsing the JWK on every call (why sso_bridge.id_token keeps parsed keys): "
        f"{jose['joserfc_import_key_each_call_us']:.0f} µs"
    )
    without, with_ = jose["import_jwt"]["without"], jose["import_jwt"]["with"]
    lines.append(
        f"import jwt: {without['ms']:.1f} ms ({without['modules']} modules) without cryptography importable, "
        f"{with_['ms']:.1f} ms ({with_['modules']} modules) with it"
        f"{' (it imports cryptography)' if with_['cryptography_loaded'] else ''}"
    )
    return lines
