"""`make deploy` refuses samconfig.toml's placeholder values before sam build or any AWS call, naming each.

The check reads the file as ``sam deploy`` does (its overrides split by SAM's own rules: a test holds
``ops.deploy_check`` to ``samcli``'s parser); ``make deploy`` is run for real with a stand-in ``sam`` that
records its argv, so "refused before calling AWS" means the stand-in never ran.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from samcli.cli.types import CfnParameterOverridesType

from local.template import load_template
from ops import deploy_check
from ops.deploy_check import parameter_overrides, placeholders
from ops.vendor_template import vendor_templates
from tests.helpers import ROOT
from tests.unit.test_template_deploy import required_settings

SHIPPED = ROOT / "samconfig.toml"
PLACEHOLDERS = ("PlatformLoginUrl", "ClickFunnelsWorkspaceDomain", "KustomerRedirectHosts", "HappyFoxAccountUrl")
REAL = {
    "PlatformLoginUrl": "https://app.acme-corp.com/sso/login",
    "ClickFunnelsWorkspaceDomain": "acme.myclickfunnels.com",
    "KustomerRedirectHosts": "acme.kustomer.help,help.acme-corp.com",
    "HappyFoxAccountUrl": "https://acme.happyfox.com",
    "AlarmEmail": "ops@acme-corp.com",
}


def toml_value(value: object) -> str:
    """``value`` (text, or lists of it) in TOML: JSON's string escapes are TOML's."""
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return json.dumps(str(value))


def write_config(path: Path, overrides: object, *, env: str = "default", command: str = "deploy") -> Path:
    """A samconfig.toml whose overrides are ``overrides``: a dict as a list of Key=Value, else as given."""
    if isinstance(overrides, dict):
        overrides = [f"{key}={value}" for key, value in overrides.items()]
    path.write_text(
        f'version = 0.1\n[{env}.{command}.parameters]\nstack_name = "sso-bridge"\n'
        f"parameter_overrides = {toml_value(overrides)}\n"
    )
    return path


def check(config: Path, *argv: str) -> tuple[int, list[str]]:
    err = io.StringIO()
    status = deploy_check.main(["--config", str(config), *argv], err=err)
    return status, err.getvalue().splitlines()


# --- what is refused --------------------------------------------------------------------------------------


def test_the_shipped_samconfig_is_refused_naming_all_four_placeholders() -> None:
    status, lines = check(SHIPPED)
    assert status == 2
    *problems, hint = lines
    # One line per placeholder, in the template's order, each with what template.yaml asks for instead
    assert [line.split(" ")[1] for line in problems] == list(PLACEHOLDERS)
    assert problems[0].startswith(f"{SHIPPED}: PlatformLoginUrl is a placeholder (app.example.com); ")
    assert "template.yaml says: Your platform's sign-in page" in problems[0]
    assert "ClickFunnelsWorkspaceDomain is a placeholder (yourworkspace); template.yaml says: " in problems[1]
    assert "your connected custom domain with www." in problems[1]
    assert "KustomerRedirectHosts is a placeholder (yourcompany)" in problems[2]
    assert "HappyFoxAccountUrl is a placeholder (yourcompany)" in problems[3]
    assert "`make deploy GUIDED=1`" in hint


def test_the_shipped_samconfig_has_every_portals_settings_to_fill_in(tmp_path: Path) -> None:
    """Each portal's required settings are in the shipped overrides as placeholders; a portal off by default is
    there switched off, and switched on as shipped it is refused, naming each setting still to fill in."""
    shipped = parameter_overrides(SHIPPED)
    template = load_template()
    for vendor in vendor_templates(template).values():
        required = required_settings(template, vendor)
        assert required <= set(shipped), f"samconfig.toml: {vendor.stem}'s settings"
        assert all(placeholders(shipped[name]) for name in required), vendor.stem
        default = template["Parameters"][vendor.switch]["Default"]
        assert shipped.get(vendor.switch, default) == default, vendor.switch
        if default == "false":
            assert vendor.switch in shipped, f"samconfig.toml: {vendor.switch}=false beside its placeholders"
            status, lines = check(write_config(tmp_path / "samconfig.toml", {**shipped, vendor.switch: "true"}))
            named = [line.split(" ")[1] for line in lines[:-1]]
            assert status == 2
            assert named == [name for name in template["Parameters"] if name in {*PLACEHOLDERS, *required}]


def test_a_real_looking_config_passes_silently(tmp_path: Path) -> None:
    assert check(write_config(tmp_path / "samconfig.toml", REAL)) == (0, [])


def test_the_string_form_sam_deploy_guided_saves_is_read_with_its_quotes(tmp_path: Path) -> None:
    # As `sam deploy --guided` saves it: one string, every value double-quoted, inner quotes escaped
    saved = " ".join(f'{key}="{value}"' for key, value in {**REAL, "OidcScopes": "openid email profile"}.items())
    config = write_config(tmp_path / "samconfig.toml", saved)
    assert parameter_overrides(config)["OidcScopes"] == "openid email profile"
    assert check(config) == (0, [])
    # And a placeholder inside it is found
    config = write_config(tmp_path / "samconfig.toml", saved.replace("acme.happyfox.com", "yourcompany.happyfox.com"))
    status, lines = check(config)
    assert status == 2
    assert [line.split(" ")[1] for line in lines[:-1]] == ["HappyFoxAccountUrl"]


def test_a_vendor_switched_off_needs_no_real_settings(tmp_path: Path) -> None:
    overrides = {**REAL, "EnableHappyFox": "false", "HappyFoxAccountUrl": "https://yourcompany.happyfox.com"}
    assert check(write_config(tmp_path / "samconfig.toml", overrides)) == (0, [])
    # Switched on (or left at its default), the same value is refused
    overrides["EnableHappyFox"] = "true"
    status, lines = check(write_config(tmp_path / "samconfig.toml", overrides))
    assert status == 2
    assert "HappyFoxAccountUrl is a placeholder" in lines[0]
    # And switching one vendor off excuses only that vendor's parameters
    overrides = {**REAL, "EnableKustomer": "false", "KustomerRedirectHosts": "x.example.com"}
    overrides["ClickFunnelsWorkspaceDomain"] = "yourworkspace.myclickfunnels.com"
    status, lines = check(write_config(tmp_path / "samconfig.toml", overrides))
    assert [line.split(" ")[1] for line in lines[:-1]] == ["ClickFunnelsWorkspaceDomain"]


def test_another_config_env_and_the_global_section_are_read_as_sam_reads_them(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "samconfig.toml", {**REAL, "PlatformLoginUrl": "https://x.example.org/"}, env="prod"
    )
    assert check(config, "--config-env", "prod")[0] == 2
    assert check(config)[0] == 2  # no [default] overrides: nothing to check is not a pass
    config = write_config(tmp_path / "samconfig.toml", {"AlarmEmail": "me@example.net"}, command="global")
    status, lines = check(config)
    assert status == 2
    assert "AlarmEmail is a placeholder (example.net)" in lines[0]


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("https://app.example.com/sso/login", ["app.example.com"]),
        ("https://EXAMPLE.NET", ["example.net"]),
        ("ops@example.org", ["example.org"]),
        ("acme.kustomer.help,help.example.com", ["help.example.com"]),
        ('{"b": {"redirect_hosts": ["kb.example.com"]}}', ["kb.example.com"]),
        ("yourworkspace.myclickfunnels.com", ["yourworkspace"]),
        ("https://YourCompany.happyfox.com", ["yourcompany"]),
        ("REPLACE_ME with the key", ["REPLACE_ME"]),
        ("https://notexample.com/", []),
        ("https://example.community/", []),
        ("https://example.com.au/", []),
        ("https://acme-example.com/", []),
        ("https://sso.acme.com", []),
        ("", []),
    ],
)
def test_placeholders_are_rfc_2606_hosts_and_the_templates_markers(value: str, found: list[str]) -> None:
    assert placeholders(value) == found


# --- nothing to check -------------------------------------------------------------------------------------


def test_no_samconfig_says_to_run_the_guided_deploy_first(tmp_path: Path) -> None:
    status, lines = check(tmp_path / "samconfig.toml")
    assert status == 2
    assert lines == [
        f"python -m ops.deploy_check: error: no {tmp_path}/samconfig.toml: run `make deploy GUIDED=1` "
        "(sam deploy --guided) first: it asks for each parameter and saves them there"
    ]


@pytest.mark.parametrize(
    "text",
    [
        'version = 0.1\n[default.deploy.parameters]\nstack_name = "x"\n',
        'version = 0.1\n[default.deploy.parameters]\nparameter_overrides = ""\n',
        "version = 0.1\n[default.deploy.parameters]\nparameter_overrides = []\n",
        "version = 0.1\n",
    ],
)
def test_no_overrides_says_to_run_the_guided_deploy_first(tmp_path: Path, text: str) -> None:
    config = tmp_path / "samconfig.toml"
    config.write_text(text)
    status, lines = check(config)
    assert status == 2
    assert len(lines) == 1
    assert "has no parameter_overrides for [default.deploy.parameters]: run `make deploy GUIDED=1`" in lines[0]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[default.deploy.parameters\n", "is not valid TOML"),
        ("[default.deploy.parameters]\nparameter_overrides = 5\n", "holds a int, not Key=Value text"),
        ('[default.deploy.parameters]\nparameter_overrides = ["A="]\n', "entry 1 is not Key=Value text"),
        ('[default.deploy.parameters]\nparameter_overrides = "file://params.yaml"\n', "reads another file"),
    ],
)
def test_a_config_it_cannot_read_is_one_line_and_refused(tmp_path: Path, text: str, says: str) -> None:
    config = tmp_path / "samconfig.toml"
    config.write_text(text)
    status, lines = check(config)
    assert status == 2
    assert len(lines) == 1
    assert says in lines[0]


# --- read as sam deploy reads it --------------------------------------------------------------------------

SAM_FORMS: list[object] = [
    ["A=1", "B=two words", 'C="quoted value"', "D='single'"],
    'A="https://x.example.com/a b" B=plain C="with \\"inner\\" quotes" D=\'it\\\'s\'',
    'ParameterKey=A,ParameterValue=1 ParameterKey=B,ParameterValue="2 3"',
    "A=1  B=2   C=3",
    'A=$(touch x) B=`id` C="; rm -rf /"',
    'A="line\nbreak" B=tab\there',
    ["A=1", ["B=2", ["C=3"]]],
    'A="x" trailing junk',
    '[default.deploy.parameters.parameter_overrides]\nA = "1"\nB = ["x", "", "y"]\nC = 3\n',
]


@pytest.mark.parametrize("form", SAM_FORMS, ids=range(len(SAM_FORMS)))
def test_overrides_are_split_exactly_as_sams_own_parser_splits_them(tmp_path: Path, form: object) -> None:
    config = tmp_path / "samconfig.toml"
    if isinstance(form, str) and form.startswith("[default"):
        config.write_text(form)  # a table of parameters
    else:
        write_config(config, form)
    raw = tomllib.loads(config.read_text())["default"]["deploy"]["parameters"]["parameter_overrides"]
    assert parameter_overrides(config) == CfnParameterOverridesType().convert(raw, None, None)


# --- make deploy ------------------------------------------------------------------------------------------


def stand_ins(directory: Path) -> Path:
    """``python`` (this interpreter, with the repository importable) and a ``sam`` that records its argv."""
    directory.mkdir()
    python = directory / "python"
    python.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" "$@"\n')
    sam = directory / "sam"
    sam.write_text(
        f"#!{sys.executable}\nimport json, pathlib, sys\n"
        "log = pathlib.Path(__file__).with_name('sam.log')\n"
        "with log.open('a') as out:\n    out.write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    for script in (python, sam):
        script.chmod(0o755)
    return directory


def make_deploy(tmp_path: Path, *variables: str) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    """``make deploy`` in ``tmp_path`` (its samconfig.toml), with the stand-ins; the ``sam`` calls made."""
    bin_dir = tmp_path / "bin"
    if not bin_dir.exists():
        stand_ins(bin_dir)
    log = bin_dir / "sam.log"
    log.unlink(missing_ok=True)
    env = {name: value for name, value in os.environ.items() if not name.startswith(("MAKE", "MFLAGS", "GUIDED"))}
    argv = ["make", "-s", "--no-print-directory", "-f", str(ROOT / "Makefile"), "-o", ".venv/.installed"]
    argv += [f"BIN={bin_dir}", "deploy", *variables]
    result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result, calls


def test_make_deploy_refuses_the_shipped_config_before_sam_runs_at_all(tmp_path: Path) -> None:
    (tmp_path / "samconfig.toml").write_text(SHIPPED.read_text())
    result, calls = make_deploy(tmp_path)
    assert result.returncode != 0
    assert calls == []  # neither sam build nor sam deploy: no AWS call, no upload
    for name in PLACEHOLDERS:
        assert f"samconfig.toml: {name} is a placeholder" in result.stderr


def test_make_deploy_with_real_values_builds_then_deploys(tmp_path: Path) -> None:
    write_config(tmp_path / "samconfig.toml", REAL)
    result, calls = make_deploy(tmp_path)
    assert result.returncode == 0, result.stderr
    assert calls == [["build", "--cached", "--parallel"], ["deploy"]]


def test_make_deploy_guided_asks_instead_of_checking(tmp_path: Path) -> None:
    # The guided deploy asks for every value (the shipped ones are its defaults) and saves the answers
    (tmp_path / "samconfig.toml").write_text(SHIPPED.read_text())
    result, calls = make_deploy(tmp_path, "GUIDED=1")
    assert result.returncode == 0, result.stderr
    assert calls == [["build", "--cached", "--parallel"], ["deploy", "--guided"]]
    result, calls = make_deploy(tmp_path, "GUIDED=0")
    assert calls == []


HOSTILE = [
    "$(touch {sentinel})",
    "`touch {sentinel}`",
    '"; touch {sentinel}; echo "',
    "'; touch {sentinel}; echo '",
    "x\ntouch {sentinel}",
    "\x1b[2J\x1b]0;pwned\x07",
]


@pytest.mark.parametrize("placeholder", [True, False], ids=["placeholder", "real"])
def test_hostile_values_never_reach_a_shell_nor_the_terminal(tmp_path: Path, placeholder: bool) -> None:
    # Given overrides holding shell syntax, quotes, newlines and terminal escapes (with a placeholder or not)
    sentinel = tmp_path / "injected"
    host = "sso.example.com" if placeholder else "sso.acme-corp.com"
    values = [f"https://{host}/{hostile.format(sentinel=sentinel)}" for hostile in HOSTILE]
    overrides = [f"PlatformLoginUrl={values[0]}", *(f"KustomerPortalUrl={value}" for value in values[1:])]
    overrides += [f"{key}={value}" for key, value in REAL.items() if key != "PlatformLoginUrl"]
    write_config(tmp_path / "samconfig.toml", overrides)

    # When make deploy runs
    result, calls = make_deploy(tmp_path)

    # Then nothing ran, no value was echoed, and sam got no value on its command line
    assert not sentinel.exists()
    assert "\x1b" not in result.stderr
    assert "touch" not in result.stderr
    if placeholder:
        assert result.returncode != 0
        assert calls == []
        assert "PlatformLoginUrl is a placeholder (sso.example.com)" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert calls == [["build", "--cached", "--parallel"], ["deploy"]]
