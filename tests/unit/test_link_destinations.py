"""`make link REDIRECT_TO=...`: a link is minted exactly when the stack's vendor function accepts its destination.

The oracle is the vendor function itself, imported under the same settings as the target reports (a cold start
with those variables): ClickFunnels checks the link's ``redirect_to`` claim against its ``redirect_hosts`` once
the reader presses Continue; Kustomer checks ``kustomerRedirectUri`` against its default brand, and refuses one
that already carries an ``externalToken``. What the function would refuse, the command refuses (exit 2) rather
than mail; a setting the target does not report is said (exit 3), never guessed.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from ops import link as link_cli
from ops.target import Target
from sso_bridge.errors import BridgeError
from sso_bridge.redirects import allowed_url
from tests.helpers import LOGIN_TOKEN_KEY, WORKSPACE
from tests.unit.test_link_vendors_and_via import bridge
from tests.unit.test_target import KUSTOMER_HOST

CLICKFUNNELS = {"CLICKFUNNELS_WORKSPACE_DOMAIN": WORKSPACE, "CLICKFUNNELS_REDIRECT_HOSTS": ""}
CLICKFUNNELS_SHOP = {**CLICKFUNNELS, "CLICKFUNNELS_REDIRECT_HOSTS": "shop.example.com, Members.Example.com"}
KUSTOMER = {"KUSTOMER_REDIRECT_HOSTS": KUSTOMER_HOST, "KUSTOMER_PORTAL_URL": f"https://{KUSTOMER_HOST}/login"}
KUSTOMER_HELP = {**KUSTOMER, "KUSTOMER_REDIRECT_HOSTS": "help.example.com"}  # the portal's host still allowed
ARTICLE = f"https://{KUSTOMER_HOST}/hc/articles/42"
# (vendor, the function's settings, REDIRECT_TO)
CASES = [
    ("clickfunnels", CLICKFUNNELS, f"https://{WORKSPACE}/members/area?tab=2#top"),
    ("clickfunnels", CLICKFUNNELS, f"https://{WORKSPACE.upper()}/members"),
    ("clickfunnels", CLICKFUNNELS, "https://evil.example.com/"),
    ("clickfunnels", CLICKFUNNELS, f"https://{WORKSPACE}.evil.example/"),
    ("clickfunnels", CLICKFUNNELS, f"https://www.{WORKSPACE}/"),
    ("clickfunnels", CLICKFUNNELS, "https://members.example.com/area"),
    ("clickfunnels", CLICKFUNNELS_SHOP, "https://members.example.com/area"),
    ("clickfunnels", CLICKFUNNELS_SHOP, "https://shop.example.com/cart?item=1"),
    ("kustomer", KUSTOMER, f"{ARTICLE}?lang=en"),
    ("kustomer", KUSTOMER, f"{ARTICLE}?externalToken=forged"),
    ("kustomer", KUSTOMER, f"{ARTICLE}?lang=en&EXTERNALTOKEN="),
    ("kustomer", KUSTOMER, f"{ARTICLE}?lang=en&externaltoken"),
    ("kustomer", KUSTOMER, f"{ARTICLE}?externalTokenHint=1"),
    ("kustomer", KUSTOMER, "https://help.example.com/x"),
    ("kustomer", KUSTOMER_HELP, "https://help.example.com/x"),
    ("kustomer", KUSTOMER_HELP, ARTICLE),
    ("kustomer", KUSTOMER_HELP, "https://evil.example.com/"),
]


def run(monkeypatch: pytest.MonkeyPatch, target: Target, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(link_cli, "resolve", lambda local, stack_name: target)
    out, err = io.StringIO(), io.StringIO()
    status = link_cli.main(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def function_accepts(module: ModuleType, vendor: str, url: str) -> str | None:
    """The destination as the vendor function signs or sends it on, or ``None`` when it refuses it."""
    try:
        if vendor == "clickfunnels":
            return allowed_url(url, module.settings.redirect_hosts)
        checked = allowed_url(url, module.settings.brands["default"].redirect_hosts)
        return str(module._without_token_parameter(checked))
    except BridgeError:
        return None


def destination_of(link: str, vendor: str) -> str:
    query = parse_qs(urlsplit(link).query)
    if vendor == "kustomer":
        return query["kustomerRedirectUri"][0]
    claims = jwt.decode(query["login_token"][0], LOGIN_TOKEN_KEY, algorithms=["HS256"], audience=vendor)
    return str(claims["redirect_to"])


@pytest.mark.parametrize(("vendor", "settings", "url"), CASES)
def test_a_link_is_minted_exactly_when_the_vendor_function_accepts_its_destination(
    aws: Any,
    load_function: Callable[..., ModuleType],
    monkeypatch: pytest.MonkeyPatch,
    vendor: str,
    settings: dict[str, str],
    url: str,
) -> None:
    # Given the vendor function as deployed with these settings, and a stack that reports them
    expected = function_accepts(load_function(vendor, **settings), vendor, url)
    target = bridge(settings={**settings, "LINK_TOKEN_MAX_TTL": "604800"})

    # When the operator mints a link to the destination
    status, out, err = run(
        monkeypatch, target, f"--provider={vendor}", "--email=jane@example.com", f"--redirect-to={url}"
    )

    # Then the link exists exactly when the function would send its reader there, and carries that destination
    if expected is not None:
        assert (status, err) == (0, "")
        assert destination_of(out.strip(), vendor) == expected
    else:
        assert (status, out) == (2, "")
        assert err.count("\n") == 1
        assert "is not allowed by stack bridge-under-test" in err or "already has an externalToken parameter" in err


def test_a_refused_host_is_named_with_the_stacks_parameters_or_the_local_variables(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ("--provider=clickfunnels", "--email=jane@example.com", "--redirect-to=https://evil.example.com/x")
    status, _, err = run(monkeypatch, bridge(settings=CLICKFUNNELS_SHOP), *argv)
    assert status == 2
    assert err == (
        "python -m ops.link: error: --redirect-to: host evil.example.com is not allowed by stack bridge-under-test"
        " in eu-west-1 (ClickFunnelsWorkspaceDomain, ClickFunnelsRedirectHosts: members.example.com, shop.example.com,"
        f" {WORKSPACE}): the bridge would refuse every link\n"
    )
    status, _, err = run(monkeypatch, bridge(settings=KUSTOMER, local=True), "--provider=kustomer", *argv[1:])
    assert err == (
        "python -m ops.link: error: --redirect-to: host evil.example.com is not allowed by the local stack at"
        f" http://localhost:3000 (KUSTOMER_REDIRECT_HOSTS, KUSTOMER_PORTAL_URL: {KUSTOMER_HOST}): the bridge would"
        " refuse every link\n"
    )


def test_under_make_the_destination_is_redirect_to(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    argv = (
        "--make=link",
        "--provider=kustomer",
        "--email=jane@example.com",
        f"--redirect-to={ARTICLE}?externalToken=x",
    )
    status, _, err = run(monkeypatch, bridge(settings=KUSTOMER), *argv)
    assert status == 2
    assert err.startswith("make link: error: REDIRECT_TO already has an externalToken parameter: the bridge refuses")


@pytest.mark.parametrize(
    ("vendor", "unreported", "url", "says"),
    [
        (
            "clickfunnels",
            "CLICKFUNNELS_WORKSPACE_DOMAIN",
            f"https://{WORKSPACE}/x",
            "does not report ClickFunnelsWorkspaceDomain: cannot tell whether its clickfunnels function allows "
            f"{WORKSPACE} (deploy the current template.yaml)",
        ),
        ("clickfunnels", "CLICKFUNNELS_REDIRECT_HOSTS", "https://shop.example.com/", "does not report Click"),
        ("kustomer", "KUSTOMER_REDIRECT_HOSTS", "https://help.example.com/", "does not report KustomerRedirectHosts"),
        ("kustomer", "KUSTOMER_PORTAL_URL", "https://help.example.com/", "does not report KustomerPortalUrl"),
    ],
)
def test_a_setting_the_stack_does_not_report_is_said_not_guessed(
    aws: Any, monkeypatch: pytest.MonkeyPatch, vendor: str, unreported: str, url: str, says: str
) -> None:
    settings = {name: value for name, value in {**CLICKFUNNELS, **KUSTOMER}.items() if name != unreported}
    argv = (f"--provider={vendor}", "--email=jane@example.com", f"--redirect-to={url}")
    status, out, err = run(monkeypatch, bridge(settings=settings), *argv)
    assert (status, out) == (3, "")
    assert f"python -m ops.link: error: stack bridge-under-test in eu-west-1 {says}" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(("local", "says"), [(False, "deploy the current template.yaml"), (True, "restart it")])
def test_a_kustomer_link_without_destination_needs_a_reported_portal(
    aws: Any, monkeypatch: pytest.MonkeyPatch, local: bool, says: str
) -> None:
    # Without REDIRECT_TO a Kustomer link lands on the portal URL: a stack that does not report one cannot tell
    settings = {"KUSTOMER_REDIRECT_HOSTS": KUSTOMER_HOST}
    status, out, err = run(
        monkeypatch, bridge(settings=settings, local=local), "--provider=kustomer", "--email=jane@example.com"
    )
    assert (status, out) == (3, "")
    name = "KUSTOMER_PORTAL_URL" if local else "KustomerPortalUrl"
    assert f"does not report {name}: cannot tell where kustomer links without --redirect-to land ({says}" in err


def test_a_host_the_reported_settings_allow_needs_no_more(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # The workspace domain is always allowed: an unreported CLICKFUNNELS_REDIRECT_HOSTS cannot change that
    settings = {"CLICKFUNNELS_WORKSPACE_DOMAIN": WORKSPACE}
    argv = ("--provider=clickfunnels", "--email=jane@example.com", f"--redirect-to=https://{WORKSPACE}/a")
    status, out, err = run(monkeypatch, bridge(settings=settings, local=True), *argv)
    assert (status, err) == (0, "")
    assert destination_of(out.strip(), "clickfunnels") == f"https://{WORKSPACE}/a"


def test_a_setting_the_function_cannot_start_with_is_said(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = {**CLICKFUNNELS, "CLICKFUNNELS_REDIRECT_HOSTS": "shop.example.com,https://members.example.com/"}
    argv = ("--provider=clickfunnels", "--email=jane@example.com", "--redirect-to=https://shop.example.com/")
    status, _, err = run(monkeypatch, bridge(settings=settings), *argv)
    assert status == 3
    assert "CLICKFUNNELS_REDIRECT_HOSTS must hold bare host names" in err
    assert err.endswith(": its clickfunnels function cannot start\n")


def test_a_mailing_to_a_refused_destination_writes_nothing(
    aws: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source, dest = tmp_path / "contacts.csv", tmp_path / "links.csv"
    source.write_text("email\njane@example.com\n")
    argv = ("--provider=kustomer", f"--in={source}", f"--out={dest}", f"--redirect-to={ARTICLE}?externalToken=x")
    status, _, err = run(monkeypatch, bridge(settings=KUSTOMER), *argv)
    assert status == 2
    assert "already has an externalToken parameter" in err
    assert not dest.exists()
