"""Run the fuzz targets one after another: ``python -m fuzz [--seconds=N] [--target=NAME] [--workdir=DIR]``.

Each target runs in its own process for ``--seconds`` (libFuzzer's ``-max_total_time``), starting from the
seeds in fuzz/corpus/<target> and the corpus it grew in earlier runs (``WORKDIR/<target>/corpus``, kept between
runs, never in the repo); a crash leaves its input in ``WORKDIR/<target>/crashes``. Exits non-zero when any
target found something.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "corpus"
TARGETS = ("login_token", "urls", "oidc_callback")
DEFAULT_SECONDS = 300
# Inputs longer than the layer's limits (4 KiB token and cookie, 8 KiB query), so "too long" refusals are reached.
MAX_LEN = 10_000


def positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {raw!r}")
    return value


def target_command(name: str, *, seconds: int, runs: int | None, seed: int | None, workdir: Path) -> list[str]:
    corpus, crashes = workdir / name / "corpus", workdir / name / "crashes"
    corpus.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        f"fuzz.{name}",
        f"-max_total_time={seconds}",
        f"-max_len={MAX_LEN}",
        "-timeout=10",  # seconds for one input: a hang is a finding too
        f"-artifact_prefix={crashes}{os.sep}",
        "-print_final_stats=1",
    ]
    if runs is not None:
        command.append(f"-runs={runs}")
    if seed is not None:
        command.append(f"-seed={seed}")
    # libFuzzer adds what it finds to the first directory only: the seeds stay as they are.
    return [*command, str(corpus), str(SEEDS / name)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=positive_int, default=DEFAULT_SECONDS, help="per target (default 300)")
    parser.add_argument("--runs", type=positive_int, help="also stop a target after this many inputs")
    parser.add_argument("--seed", type=positive_int, help="libFuzzer's random seed, to repeat a run")
    parser.add_argument("--target", choices=TARGETS, action="append", help="only this one (repeatable)")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "sso-bridge-fuzz", help="corpus and crashes"
    )
    args = parser.parse_args(argv)
    if importlib.util.find_spec("atheris") is None:
        print("fuzz: atheris is not installed (it ships wheels for Linux x86_64 only)", file=sys.stderr)
        return 2

    # The targets import the layer as Lambda does (/opt/python): from layers/signing, whatever the venv holds.
    pythonpath = [str(ROOT), str(ROOT / "layers" / "signing"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(part for part in pythonpath if part)}
    found = []
    for name in args.target or TARGETS:
        command = target_command(name, seconds=args.seconds, runs=args.runs, seed=args.seed, workdir=args.workdir)
        print(f"== fuzz.{name}: {args.seconds}s, corpus in {args.workdir / name}", flush=True)
        if subprocess.run(command, cwd=ROOT, env=env, check=False).returncode != 0:
            found.append(name)
    if found:
        crashes = ", ".join(str(args.workdir / name / "crashes") for name in found)
        print(f"fuzz: {', '.join(found)} found a failing input (saved in {crashes})", file=sys.stderr)
        return 1
    print(f"fuzz: {', '.join(args.target or TARGETS)}: nothing found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
