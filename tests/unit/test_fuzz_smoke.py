"""The fuzz targets (fuzz/, atheris) run briefly on every `make test`; `make fuzz` runs them for minutes.

Each target gets a few seconds in its own process, from the seed corpus, with its finds and crashes kept in a
temporary folder: a failing input fails the test, with libFuzzer's report (the input, in base64) in the message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.__main__ import ROOT, SEEDS, TARGETS

SECONDS_PER_TARGET = 6


@pytest.mark.parametrize("target", TARGETS)
def test_a_short_fuzz_run_finds_nothing(target: str, tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris ships wheels for Linux x86_64 only (pyproject.toml)")
    command = [sys.executable, "-m", "fuzz", f"--target={target}", f"--seconds={SECONDS_PER_TARGET}"]
    result = subprocess.run(
        [*command, f"--workdir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    report = (result.stdout + result.stderr)[-6000:]
    assert result.returncode == 0, report
    assert "Done " in result.stderr, report  # libFuzzer ran inputs, not just started
    assert not any((tmp_path / target / "crashes").iterdir())


@pytest.mark.parametrize("target", TARGETS)
def test_every_target_has_seeds(target: str) -> None:
    assert any((SEEDS / target).iterdir())


def test_the_runner_refuses_a_duration_that_is_not_a_positive_number() -> None:
    for seconds in ("0", "-5", "ten", "1;true"):
        result = subprocess.run(
            [sys.executable, "-m", "fuzz", f"--seconds={seconds}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 2, result.stderr
        assert "--seconds" in result.stderr


def make_fuzz(tmp_path: Path, *variables: str) -> list[str]:
    """The argv ``make fuzz`` gives Python (a stand-in that prints it), with the venv taken as built."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python = bin_dir / "python"
    python.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    python.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("FUZZ_SECONDS", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    argv = ["make", "-s", "--no-print-directory", "-C", str(ROOT), "-o", ".venv/.installed", f"BIN={bin_dir}", "fuzz"]
    result = subprocess.run([*argv, *variables], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    argv_seen: list[str] = json.loads(line)
    return argv_seen


def test_make_fuzz_runs_every_target_for_the_default_time(tmp_path: Path) -> None:
    assert make_fuzz(tmp_path) == ["-m", "fuzz"]


@pytest.mark.parametrize(
    "seconds",
    ["600", "`touch {sentinel}`", "$(touch {sentinel})", "$(shell touch {sentinel})", "'; touch {sentinel}; '"],
)
def test_make_fuzz_hands_fuzz_seconds_over_verbatim_and_runs_nothing(tmp_path: Path, seconds: str) -> None:
    sentinel = tmp_path / "injected"
    value = seconds.format(sentinel=sentinel)
    assert make_fuzz(tmp_path, f"FUZZ_SECONDS={value}") == ["-m", "fuzz", f"--seconds={value}"]
    assert not sentinel.exists()
