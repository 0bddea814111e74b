"""The make targets hand user data to programs as argv, verbatim, and never run any of it.

Emails, names and file names come from CRMs and spreadsheets, so a value may hold shell or make syntax.
Each target is run for real with ``BIN`` pointing at a stand-in ``python`` that prints its argv as JSON
(``-o .venv/.installed`` keeps make from setting up the venv); a sentinel file that a successful injection
would create must never appear.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

# Variables that carry user data, and the make-level ones that select things: none may leak in from outside.
USER_VARS = ("EMAIL", "NAME", "JTI", "AUD", "PROVIDER", "TTL", "REDIRECT_TO", "CAMPAIGN", "IN", "OUT", "VIA")
SWITCHES = ("LOCAL", "JSON", "EMERGENCY", "SHOW_KEY", "GUIDED")
# The pages' brand, which `make run` hands to the stack as it does VENDORS.
BRAND_VARS = ("BRAND_NAME", "BRAND_LOGO_URL", "BRAND_COLOR", "SUPPORT_URL", "PLATFORM_HOME_URL")
CLEARED = frozenset(
    (*USER_VARS, *SWITCHES, *BRAND_VARS, "STACK_NAME", "VENDORS", "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "FAKE_STATUS")
)
# target -> (the program's module, variable -> the option that carries it)
TARGETS = {
    "link": (
        "ops.link",
        {
            "PROVIDER": "--provider",
            "EMAIL": "--email",
            "NAME": "--name",
            "TTL": "--ttl",
            "REDIRECT_TO": "--redirect-to",
            "CAMPAIGN": "--campaign",
            "VIA": "--via",
            "STACK_NAME": "--stack-name",
        },
    ),
    "links": (
        "ops.link",
        {
            "PROVIDER": "--provider",
            "IN": "--in",
            "OUT": "--out",
            "TTL": "--ttl",
            "REDIRECT_TO": "--redirect-to",
            "CAMPAIGN": "--campaign",
            "VIA": "--via",
            "STACK_NAME": "--stack-name",
        },
    ),
    "revoke": ("ops.revoke", {"EMAIL": "--email", "STACK_NAME": "--stack-name"}),
    "audit": ("ops.audit", {"EMAIL": "--email", "JTI": "--jti", "STACK_NAME": "--stack-name"}),
    "login-token": ("local.mint_login_token", {"EMAIL": "--email", "AUD": "--aud", "NAME": "--name", "TTL": "--ttl"}),
    "rotate-login-key": ("ops.rotate_key", {"STACK_NAME": "--stack-name"}),
    "smoke": ("ops.smoke", {"STACK_NAME": "--stack-name"}),
    "vendor-public-key": ("ops.vendor_public_key", {"PROVIDER": "--provider", "STACK_NAME": "--stack-name"}),
}
# {sentinel} is the file an injection would create.
HOSTILE = {
    "backticks": "`touch {sentinel}`",
    "command substitution": "$(touch {sentinel})",
    "make shell": "$(shell touch {sentinel})",
    "make shell, braces": "${{shell touch {sentinel}}}",
    "make escaped dollar": "$$(touch {sentinel})",
    "make eval": "$(eval $(shell touch {sentinel}))",
    "single quotes": "'; touch {sentinel}; echo '",
    "double quotes": '"; touch {sentinel}; echo "',
    "semicolon": "x;touch {sentinel}",
    "pipes and redirections": "a|touch {sentinel}&b>{sentinel}<c",
    "apostrophe": "O'Brien",
    "spaces": "Jane   Doe  ",  # make's own VAR=value parsing drops leading blanks, before any recipe
    "shell variable": "$HOME ${{HOME}} $$HOME",
    "comment": "#x # y",
    "backslashes": "a\\b\\\\c\\",
    "glob": "*",
    "tab and carriage return": "a\tb\rc",
    "unicode": "Jöhn Døe 名前",
}


def fake_bin(directory: Path) -> Path:
    """A ``python`` that prints its argv as one JSON line and exits with ``FAKE_STATUS``."""
    directory.mkdir()
    script = directory / "python"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "print(json.dumps(sys.argv[1:]))\n"
        "sys.exit(int(os.environ.get('FAKE_STATUS', '0')))\n"
    )
    script.chmod(0o755)
    return directory


def make(
    tmp_path: Path, target: str, variables: dict[str, str], *, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    if not bin_dir.exists():
        fake_bin(bin_dir)
    clean = {name: value for name, value in os.environ.items() if name not in CLEARED}
    argv = ["make", "-s", "--no-print-directory", "-C", str(ROOT), "-o", ".venv/.installed", f"BIN={bin_dir}"]
    argv += [target, *(f"{name}={value}" for name, value in variables.items())]
    return subprocess.run(argv, cwd=tmp_path, env={**clean, **(env or {})}, capture_output=True, text=True, timeout=60)


def argv_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()  # the program ran exactly once
    argv: list[str] = json.loads(line)
    return argv


@pytest.mark.parametrize("hostile", list(HOSTILE.values()), ids=list(HOSTILE))
@pytest.mark.parametrize("target", list(TARGETS))
def test_hostile_values_reach_the_program_verbatim_and_run_nothing(tmp_path: Path, target: str, hostile: str) -> None:
    # Given every variable of the target set to the same hostile value
    sentinel = tmp_path / "injected"
    value = hostile.format(sentinel=sentinel)
    module, options = TARGETS[target]

    # When the target runs
    argv = argv_of(make(tmp_path, target, dict.fromkeys(options, value)))

    # Then the program got each value as one argument, byte for byte, and nothing else ran
    assert argv[:2] == ["-m", module]
    for option in options.values():
        assert f"{option}={value}" in argv
    assert not sentinel.exists()


@pytest.mark.parametrize("target", list(TARGETS))
def test_hostile_values_from_the_environment_are_as_harmless(tmp_path: Path, target: str) -> None:
    sentinel = tmp_path / "injected"
    value = f"$(shell touch {sentinel})`touch {sentinel}`"
    _, options = TARGETS[target]
    argv = argv_of(make(tmp_path, target, {}, env=dict.fromkeys(options, value)))
    for option in options.values():
        assert f"{option}={value}" in argv
    assert not sentinel.exists()


@pytest.mark.parametrize("flag", SWITCHES)
@pytest.mark.parametrize("target", list(TARGETS))
def test_switches_are_never_expanded_either(tmp_path: Path, target: str, flag: str) -> None:
    sentinel = tmp_path / "injected"
    result = make(tmp_path, target, {flag: f"$(shell touch {sentinel})"})
    assert result.returncode == 0, result.stderr
    assert not sentinel.exists()


@pytest.mark.parametrize(
    ("target", "variable"),
    [(target, variable) for target, (_, options) in TARGETS.items() for variable in options],
)
def test_a_newline_stops_make_before_anything_runs(tmp_path: Path, target: str, variable: str) -> None:
    sentinel = tmp_path / "injected"
    result = make(tmp_path, target, {variable: f"jane@example.com\ntouch {sentinel}"})
    assert result.returncode != 0
    assert f"{variable} must be one line" in result.stderr
    assert result.stdout == ""  # the program never ran
    assert not sentinel.exists()


def test_link_passes_only_what_was_given(tmp_path: Path) -> None:
    argv = argv_of(make(tmp_path, "link", {"PROVIDER": "clickfunnels", "EMAIL": "jane@example.com"}))
    assert argv == [
        "-m",
        "ops.link",
        "--make=link",  # messages name make's variables (EMAIL, not --email)
        "--provider=clickfunnels",
        "--email=jane@example.com",
        "--stack-name=sso-bridge",
    ]


@pytest.mark.parametrize("target", ["link", "links"])
def test_via_is_passed_when_set(tmp_path: Path, target: str) -> None:
    argv = argv_of(make(tmp_path, target, {"PROVIDER": "happyfox", "VIA": "api", "LOCAL": "1"}))
    assert argv[-2:] == ["--via=api", "--local"]


def test_links_with_local_uses_the_local_stack_and_no_stack_name(tmp_path: Path) -> None:
    variables = {"PROVIDER": "kustomer", "IN": "contacts.csv", "OUT": "links.csv", "TTL": "3d", "LOCAL": "1"}
    argv = argv_of(make(tmp_path, "links", variables))
    assert argv == [
        "-m",
        "ops.link",
        "--make=links",
        "--provider=kustomer",
        "--in=contacts.csv",
        "--out=links.csv",
        "--ttl=3d",
        "--local",
    ]


def test_stack_name_is_passed_when_set(tmp_path: Path) -> None:
    argv = argv_of(make(tmp_path, "revoke", {"EMAIL": "jane@example.com", "STACK_NAME": "prod-bridge"}))
    assert argv == ["-m", "ops.revoke", "--email=jane@example.com", "--stack-name=prod-bridge"]


def test_login_token_defaults_to_clickfunnels(tmp_path: Path) -> None:
    argv = argv_of(make(tmp_path, "login-token", {"EMAIL": "you@example.com"}))
    assert argv == ["-m", "local.mint_login_token", "--email=you@example.com", "--aud=clickfunnels"]


def test_audit_passes_json_and_local(tmp_path: Path) -> None:
    argv = argv_of(make(tmp_path, "audit", {"EMAIL": "jane@example.com", "JSON": "1", "LOCAL": "1"}))
    assert argv == ["-m", "ops.audit", "--email=jane@example.com", "--json", "--local"]


def test_audit_not_found_is_an_answer_not_a_make_error(tmp_path: Path) -> None:
    # ops.audit exits 1 for "no such token" after saying so; make must not add its own error on top
    result = make(tmp_path, "audit", {"JTI": "unknown"}, env={"FAKE_STATUS": "1"})
    assert result.returncode == 0
    assert "make:" not in result.stderr
    assert "Error" not in result.stderr


@pytest.mark.parametrize("status", ["2", "3"])
def test_audit_failures_still_fail_make(tmp_path: Path, status: str) -> None:
    result = make(tmp_path, "audit", {"JTI": "x"}, env={"FAKE_STATUS": status})
    assert result.returncode != 0


def test_rotate_login_key_passes_its_switches_and_reads_0_as_off(tmp_path: Path) -> None:
    argv = argv_of(make(tmp_path, "rotate-login-key", {}))
    assert argv == ["-m", "ops.rotate_key", "--stack-name=sso-bridge"]
    argv = argv_of(make(tmp_path, "rotate-login-key", {"EMERGENCY": "1", "SHOW_KEY": "yes", "LOCAL": "1"}))
    assert argv == ["-m", "ops.rotate_key", "--emergency", "--show-key", "--local"]
    for off in ("0", "no", "false", "off", ""):
        argv = argv_of(make(tmp_path, "rotate-login-key", {"EMERGENCY": off, "SHOW_KEY": off}))
        assert argv == ["-m", "ops.rotate_key", "--stack-name=sso-bridge"]


def test_vendor_public_key_names_make_variables_and_takes_local(tmp_path: Path) -> None:
    argv = argv_of(make(tmp_path, "vendor-public-key", {"PROVIDER": "freshworks", "LOCAL": "1"}))
    assert argv == ["-m", "ops.vendor_public_key", "--make", "--provider=freshworks", "--local"]


@pytest.mark.parametrize("target", ["link", "links", "revoke", "rotate-login-key", "smoke", "vendor-public-key"])
def test_failures_of_the_other_targets_fail_make(tmp_path: Path, target: str) -> None:
    assert make(tmp_path, target, {}, env={"FAKE_STATUS": "3"}).returncode != 0


def test_help_lists_the_targets(tmp_path: Path) -> None:
    result = make(tmp_path, "help", {})
    for usage in (
        "make link PROVIDER=",
        "make links PROVIDER=",
        "make revoke EMAIL=",
        "make rotate-login-key",
        "make audit ",
        "make login-token",
        "make smoke",
        "make vendor-public-key PROVIDER=",
        "VENDORS=",
    ):
        assert usage in result.stdout


def test_dynamodb_local_comes_from_its_lock_file_before_the_tests_the_stack_and_the_bench() -> None:
    # -W: as if the lock file had changed; -n: print the recipe, run nothing
    lock = "local/dynamodb_local/package-lock.json"
    argv = ["make", "-n", "-s", "--no-print-directory", "-C", str(ROOT), "-W", lock]
    recipe = subprocess.run([*argv, "local/dynamodb_local/node_modules/.installed"], capture_output=True, text=True)
    assert "npm ci --prefix local/dynamodb_local" in recipe.stdout  # `npm ci`: exactly the lock file's versions
    rules = subprocess.run(
        ["make", "-pq", "--no-print-directory", "-C", str(ROOT), "help"], capture_output=True, text=True
    ).stdout
    for target in ("test", "integration", "e2e", "run", "bench"):
        [rule] = [line for line in rules.splitlines() if line.startswith(f"{target}: ")]
        assert "dynamodb-local" in rule.split(), rule


def test_smoke_checks_the_local_stack_or_the_named_one(tmp_path: Path) -> None:
    assert argv_of(make(tmp_path, "smoke", {})) == ["-m", "ops.smoke", "--stack-name=sso-bridge"]
    assert argv_of(make(tmp_path, "smoke", {"LOCAL": "1"})) == ["-m", "ops.smoke", "--local"]
    assert argv_of(make(tmp_path, "smoke", {"STACK_NAME": "prod-bridge"})) == [
        "-m",
        "ops.smoke",
        "--stack-name=prod-bridge",
    ]


# `make run VENDORS=...`: the stack reads VENDORS from its environment (like PORT), so the value must arrive
# there verbatim, and only when given (unset: every vendor; empty: refused by the stack itself).


# `make run`'s set-up (the venv, the local OpenID provider, DynamoDB Local) is skipped: only its command runs.
RUN_SET_UP = ("-o", ".venv/.installed", "-o", "oidc-provider", "-o", "dynamodb-local")


def make_run(tmp_path: Path, variables: dict[str, str], *, env: dict[str, str] | None = None) -> dict[str, object]:
    """``make run`` with a ``python`` that prints its argv and the ``VENDORS`` it was given, as JSON."""
    bin_dir = tmp_path / "run-bin"
    if not bin_dir.exists():
        bin_dir.mkdir()
        script = bin_dir / "python"
        script.write_text(
            f"#!{sys.executable}\n"
            "import json, os, sys\n"
            f"names = ('VENDORS', *{BRAND_VARS!r})\n"
            "print(json.dumps({'argv': sys.argv[1:], **{name: os.environ.get(name) for name in names}}))\n"
        )
        script.chmod(0o755)
    clean = {name: value for name, value in os.environ.items() if name not in CLEARED}
    argv = ["make", "-s", "--no-print-directory", "-C", str(ROOT), f"BIN={bin_dir}"]
    argv += [*RUN_SET_UP, "run", *(f"{name}={value}" for name, value in variables.items())]
    result = subprocess.run(
        argv, cwd=tmp_path, env={**clean, **(env or {})}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    ran: dict[str, object] = json.loads(line)
    assert ran["argv"] == ["-m", "local.stack"]
    return ran


@pytest.mark.parametrize("hostile", list(HOSTILE.values()), ids=list(HOSTILE))
def test_run_hands_vendors_to_the_stack_verbatim_and_runs_nothing(tmp_path: Path, hostile: str) -> None:
    sentinel = tmp_path / "injected"
    value = hostile.format(sentinel=sentinel)
    assert make_run(tmp_path, {"VENDORS": value})["VENDORS"] == value
    assert make_run(tmp_path, {}, env={"VENDORS": value})["VENDORS"] == value
    assert not sentinel.exists()


def test_run_passes_vendors_only_when_given(tmp_path: Path) -> None:
    assert make_run(tmp_path, {})["VENDORS"] is None  # every vendor
    assert make_run(tmp_path, {"VENDORS": "happyfox,kustomer"})["VENDORS"] == "happyfox,kustomer"
    assert make_run(tmp_path, {"VENDORS": ""})["VENDORS"] == ""  # the stack refuses it, naming the vendors


@pytest.mark.parametrize("variable", BRAND_VARS)
@pytest.mark.parametrize("hostile", list(HOSTILE.values()), ids=list(HOSTILE))
def test_run_hands_the_brand_to_the_stack_verbatim_and_runs_nothing(
    tmp_path: Path, variable: str, hostile: str
) -> None:
    # A company's name may hold make or shell syntax: the stack checks it (settings.Brand), make must not run it
    sentinel = tmp_path / "injected"
    value = hostile.format(sentinel=sentinel)
    assert make_run(tmp_path, {variable: value})[variable] == value
    assert make_run(tmp_path, {}, env={variable: value})[variable] == value
    assert make_run(tmp_path, {})[variable] is None  # unset: unbranded
    assert not sentinel.exists()


def test_run_stops_on_a_newline_in_vendors(tmp_path: Path) -> None:
    sentinel = tmp_path / "injected"
    argv = ["make", "-s", "--no-print-directory", "-C", str(ROOT), f"BIN={tmp_path}", *RUN_SET_UP]
    argv += ["run", f"VENDORS=happyfox\ntouch {sentinel}"]
    clean = {name: value for name, value in os.environ.items() if name not in CLEARED}
    result = subprocess.run(argv, cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "VENDORS must be one line" in result.stderr
    assert not sentinel.exists()


# `make link` and `make links` for real (this venv's ops.link), with no AWS credentials and no local stack: what the
# operator reads names the variables they typed (EMAIL, OUT), never ops.link's options (--email, --out).


def make_for_real(
    tmp_path: Path, target: str, variables: dict[str, str], *, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    clean = {name: os.environ[name] for name in ("PATH", "LANG", "LC_ALL") if name in os.environ}
    clean |= {
        "HOME": str(home),  # no ~/.aws
        "AWS_CONFIG_FILE": str(home / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_REGION": "eu-west-1",
        "LOCAL_STACK_FILE": str(tmp_path / "no-stack.json"),
    }
    argv = ["make", "-s", "--no-print-directory", "-C", str(ROOT), "-o", ".venv/.installed"]
    argv += [f"BIN={Path(sys.executable).parent}", target, *(f"{name}={value}" for name, value in variables.items())]
    return subprocess.run(argv, cwd=tmp_path, env={**clean, **(env or {})}, capture_output=True, text=True, timeout=60)


def first_error(result: subprocess.CompletedProcess[str]) -> str:
    """The program's one line (make adds its own "Error 2" line after it)."""
    assert result.returncode != 0
    assert result.stdout == ""
    line = result.stderr.splitlines()[0]
    assert "--" not in line  # no option name: the operator typed none
    return line


JANE = {"PROVIDER": "clickfunnels", "EMAIL": "jane@example.com"}
FORMULA = "must not start with =, +, -, @, tab or CR, after any leading blanks either (a spreadsheet would run it)"
MESSAGES = [
    ("links", {"PROVIDER": "kustomer", "IN": "{tmp}/contacts.csv"}, "OUT is required: the file to write"),
    (
        "links",
        {"PROVIDER": "kustomer"},
        "IN and OUT are required: the contacts export to read, and the file to write",
    ),
    (
        "links",
        {"PROVIDER": "kustomer", "IN": "{tmp}/contacts.csv", "OUT": "{tmp}/contacts.csv"},
        "OUT must not be IN: the contacts file would be replaced",
    ),
    (
        "links",
        {"PROVIDER": "kustomer", "IN": "{tmp}/none.csv", "OUT": "{tmp}/o.csv"},
        "IN={tmp}/none.csv: no such file",
    ),
    (
        "links",
        {"PROVIDER": "kustomer", "IN": "{tmp}/contacts.csv", "OUT": "{tmp}"},
        "OUT={tmp} is a directory: name the file to write",
    ),
    ("link", {"PROVIDER": "clickfunnels"}, "EMAIL is required: the recipient's address"),
    (
        "link",
        {"EMAIL": "jane@example.com"},
        "PROVIDER is required: the vendor portal, one of clickfunnels, kustomer, happyfox",
    ),
    ("link", {**JANE, "EMAIL": "jane"}, "EMAIL is not an address the bridge accepts (email_invalid)"),
    ("link", {**JANE, "EMAIL": "\u00a0=1+1@example.com"}, f"EMAIL {FORMULA}"),
    ("link", {**JANE, "NAME": "\u3000@SUM(A1)"}, f"NAME {FORMULA}"),
    ("link", {**JANE, "TTL": "1w"}, "TTL='1w': use 7d, 36h, 90m, 3600s or plain seconds"),
    ("link", {**JANE, "TTL": "31d"}, "TTL=31d is over 30d, the longest any link may live"),
    ("link", {**JANE, "VIA": "cdn"}, "VIA='cdn': url (the function URL, default) or api (the HTTP API)"),
    ("link", {**JANE, "CAMPAIGN": "spring sale!"}, "CAMPAIGN: letters, digits and ._:/+- only, at most 64"),
    ("link", {**JANE, "REDIRECT_TO": "http://a.example/"}, "REDIRECT_TO: not a plain https URL the bridge accepts"),
    ("link", {**JANE, "STACK_NAME": "my stack"}, "STACK_NAME: a stack name is letters, digits and -, starting with"),
]


@pytest.mark.parametrize(("target", "variables", "says"), MESSAGES)
def test_link_errors_name_the_make_variables_typed(
    tmp_path: Path, target: str, variables: dict[str, str], says: str
) -> None:
    (tmp_path / "contacts.csv").write_text("email\njane@example.com\n")
    result = make_for_real(tmp_path, target, {name: value.format(tmp=tmp_path) for name, value in variables.items()})
    assert first_error(result).startswith(f"make {target}: error: {says.format(tmp=tmp_path)}")
    assert result.stderr.count("error:") == 1  # one line from the program


def test_make_link_without_local_1_says_so_while_make_run_is_running(tmp_path: Path) -> None:
    # Given `make run` running here (its state file names a live process: this one) and no AWS credentials
    from local.state import write_state
    from tests.unit.test_target import local_state

    state = tmp_path / "local-stack.json"
    write_state(local_state(pid=os.getpid()), state)

    # When the operator forgets LOCAL=1
    result = make_for_real(tmp_path, "link", JANE, env={"LOCAL_STACK_FILE": str(state)})

    # Then the one line says what failed, and that LOCAL=1 would use the running stack
    line = first_error(result)
    assert line.startswith("make link: error: no AWS credentials")
    assert line.endswith("`make run` is running here: add LOCAL=1 to use it")


def test_no_local_1_hint_without_a_running_local_stack(tmp_path: Path) -> None:
    from local.state import write_state
    from tests.unit.test_target import local_state

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    state = tmp_path / "local-stack.json"
    write_state(local_state(pid=gone.pid), state)  # a stack killed without cleaning up
    for env in ({}, {"LOCAL_STACK_FILE": str(state)}):
        line = first_error(make_for_real(tmp_path, "link", JANE, env=env))
        assert line.startswith("make link: error: no AWS credentials")
        assert "running here" not in line
