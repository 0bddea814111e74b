"""`make link REDIRECT_TO=...`: a link is minted exactly when the stack's vendor function accepts its destination.

The oracle is the vendor function itself, imported under the same settings as the target reports (a cold start
with those variables): ClickFunnels checks the link's ``redirect_to`` claim against its ``redirect_hosts`` once
the reader presses Continue, Zendesk against its account's host and ``ZENDESK_HOSTS`` (it comes back as
``return_to``); Kustomer checks ``kustomerRedirectUri`` against its default brand, and refuses one that already
carries an ``externalToken``. Canny, Discourse and Freshworks take no destination; Canny's and Freshworks' links
land on their portal URL, without which every click is refused. What the function would refuse, the command
refuses (exit 2) rather than mail; a setting the target does not report is said (exit 3), never guessed. Each
vendor's rules are its stand-in's declaration (``StandInSpec.links``): the tests hold them against its function.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest

from local.mint_login_token import mint
from local.vendors.operations import link_rules
from ops import link as link_cli
from ops.link_destination import allowed_hosts
from ops.target import Target, vendors
from sso_bridge.errors import BridgeError
from sso_bridge.redirects import allowed_url
from tests.helpers import EVENTS, LOGIN_TOKEN_KEY, WORKSPACE, LambdaContext, load_event
from tests.unit.test_link_vendors_and_via import SETTINGS, bridge
from tests.unit.test_redirects import HOSTILE
from tests.unit.test_target import KUSTOMER_HOST

CLICKFUNNELS = {"CLICKFUNNELS_WORKSPACE_DOMAIN": WORKSPACE, "CLICKFUNNELS_REDIRECT_HOSTS": ""}
CLICKFUNNELS_SHOP = {**CLICKFUNNELS, "CLICKFUNNELS_REDIRECT_HOSTS": "shop.example.com, Members.Example.com"}
KUSTOMER = {"KUSTOMER_REDIRECT_HOSTS": KUSTOMER_HOST, "KUSTOMER_PORTAL_URL": f"https://{KUSTOMER_HOST}/login"}
KUSTOMER_HELP = {**KUSTOMER, "KUSTOMER_REDIRECT_HOSTS": "help.example.com"}  # the portal's host still allowed
ARTICLE = f"https://{KUSTOMER_HOST}/hc/articles/42"
ZD_HOST = "acme.zendesk.com"
ZENDESK = {"ZENDESK_ACCOUNT_URL": f"https://{ZD_HOST}", "ZENDESK_HOSTS": ""}
ZENDESK_MAPPED = {**ZENDESK, "ZENDESK_HOSTS": "help.example.org, Docs.Example.org"}  # host-mapped help centers
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
    ("zendesk", ZENDESK, f"https://{ZD_HOST}/hc/en-us/articles/42?x=1#top"),
    ("zendesk", ZENDESK, f"https://{ZD_HOST.upper()}/hc/"),
    ("zendesk", ZENDESK, "https://help.example.org/hc/"),
    ("zendesk", ZENDESK_MAPPED, "https://help.example.org/hc/"),
    ("zendesk", ZENDESK_MAPPED, "https://docs.example.org/hc/en-us"),
    ("zendesk", ZENDESK_MAPPED, "https://evil.example.com/"),
    ("zendesk", ZENDESK, f"https://{ZD_HOST}.evil.example/"),
    ("zendesk", ZENDESK, "https://other.zendesk.com/hc/"),
    ("zendesk", ZENDESK, f"https://{ZD_HOST}@evil.example/"),
    ("zendesk", ZENDESK, f"http://{ZD_HOST}/hc/"),
    ("zendesk", ZENDESK, f"https://{ZD_HOST}:8443/hc/"),
]


def run(monkeypatch: pytest.MonkeyPatch, target: Target, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(link_cli, "resolve", lambda local, stack_name: target)
    out, err = io.StringIO(), io.StringIO()
    status = link_cli.main(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def function_accepts(module: ModuleType, vendor: str, url: str) -> str | None:
    """The destination as the vendor function signs or sends it on, or ``None`` when it refuses it."""
    try:
        if vendor in ("clickfunnels", "zendesk"):  # a claim, checked against the flow's deep-link hosts
            return allowed_url(url, module.flow.deep_link_hosts)
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
        assert any(
            says in err
            for says in (
                "is not allowed by stack bridge-under-test",
                "already has an externalToken parameter",
                "not a plain https URL the bridge accepts",
            )
        )


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


# --- each vendor's declaration, held against its function -----------------------------------------------------


def test_every_template_vendor_is_covered() -> None:
    assert {"zendesk", "canny", "discourse", "freshworks"} <= set(vendors())


@pytest.mark.parametrize("vendor", vendors())
@pytest.mark.parametrize(
    "extra", [{}, {"ZENDESK_HOSTS": "help.example.org", "CLICKFUNNELS_REDIRECT_HOSTS": "s.example"}]
)
def test_each_vendors_declared_allow_list_is_its_functions_own(
    aws: Any, load_function: Callable[..., ModuleType], vendor: str, extra: dict[str, str]
) -> None:
    # Given the vendor function under the test settings (and some extra hosts)
    module = load_function(vendor, **extra)
    rules = link_rules(vendor)

    # Then the hosts ops reads from the declared variables are the ones the function checks a destination against
    if rules.parameter is None:  # a claim: the flow's deep link (none at all when the function takes none)
        expected = module.flow.deep_link_hosts if module.flow.deep_link_param else frozenset()
    else:  # a query parameter the function reads itself: Kustomer's, checked against its default brand
        expected = module.settings.brands["default"].redirect_hosts
    assert allowed_hosts(rules, dict(os.environ)) == expected
    assert bool(rules.hosts) == bool(expected)


@pytest.mark.parametrize("vendor", vendors())
def test_a_link_without_a_destination_lands_exactly_where_the_declaration_says(
    jti_table: Any, link_tables: Any, load_function: Callable[..., ModuleType], vendor: str
) -> None:
    # Given the function without the landing setting its stand-in declares (if any)
    rules = link_rules(vendor)
    module = load_function(vendor, **({rules.landing: ""} if rules.landing else {}))

    # When a reader arrives signed in, with none of the vendor's own parameters (as a spent link sends them)
    [sample] = [
        name for name in (f"{vendor}-login-httpapi", f"{vendor}-sso-httpapi") if (EVENTS / f"{name}.json").exists()
    ]
    token = mint("jane@example.com", [vendor], LOGIN_TOKEN_KEY)
    event = load_event(sample, query=urlencode({"login_token": token}), headers={"accept": "application/json"})
    response = module.lambda_handler(event, LambdaContext())

    # Then it is refused exactly when a landing page is declared and unset: what `make link` refuses to mail
    assert (response["statusCode"] == 400) == (rules.landing is not None), response.get("body")


@pytest.mark.parametrize(("vendor", "landing"), [("canny", "CannyPortalUrl"), ("freshworks", "FreshworksPortalUrl")])
def test_a_portal_that_takes_no_destination_needs_its_landing_page(
    aws: Any, monkeypatch: pytest.MonkeyPatch, vendor: str, landing: str
) -> None:
    variable = link_rules(vendor).landing
    assert variable is not None
    argv = (f"--provider={vendor}", "--email=jane@example.com")
    # Set: the link is minted, with no destination of its own
    status, out, err = run(monkeypatch, bridge(), *argv)
    assert (status, err) == (0, "")
    assert list(parse_qs(urlsplit(out.strip()).query)) == ["login_token"]
    # Blank: every click would be refused, so nothing is minted
    status, out, err = run(monkeypatch, bridge(settings={**SETTINGS, variable: ""}), *argv)
    assert (status, out) == (2, "")
    assert err == (
        f"python -m ops.link: error: {vendor} links land on {landing}, and stack bridge-under-test in eu-west-1 has "
        f"none: the bridge would refuse every link (deploy again with {landing} set)\n"
    )
    # Not reported: said, not guessed
    unreported = {name: value for name, value in SETTINGS.items() if name != variable}
    status, out, err = run(monkeypatch, bridge(settings=unreported, local=True), *argv)
    assert (status, out) == (3, "")
    assert err == (
        f"python -m ops.link: error: the local stack at http://localhost:3000 does not report {variable}: cannot tell "
        f"where {vendor} links land (restart it with `make run`)\n"
    )


@pytest.mark.parametrize("vendor", ["canny", "discourse", "freshworks", "happyfox"])
def test_a_portal_that_takes_no_destination_refuses_one_before_the_stack_is_looked_up(
    monkeypatch: pytest.MonkeyPatch, vendor: str
) -> None:
    monkeypatch.setattr(link_cli, "resolve", lambda local, stack_name: pytest.fail("the stack was looked up"))
    out, err = io.StringIO(), io.StringIO()
    argv = [f"--provider={vendor}", "--email=jane@example.com", "--redirect-to=https://acme.canny.io/feature-requests"]
    assert link_cli.main(argv, out=out, err=err) == 2
    assert err.getvalue() == (
        f"python -m ops.link: error: --redirect-to: {vendor} has no deep links (it takes no destination from a link)\n"
    )


# The first and last example of each class of the redirect corpus (tests/unit/test_zendesk.py runs all of it on
# the function): enough to hold make link to the function's judgement, class by class.
HOSTILE_ZENDESK = [
    pytest.param(raw.replace("portal.example.com", ZD_HOST), id=f"{kind}: {raw!r}")
    for kind, examples in HOSTILE.items()
    for raw in dict.fromkeys((examples[0], examples[-1]))
    if raw  # an empty REDIRECT_TO is no destination
]


@pytest.mark.parametrize("url", HOSTILE_ZENDESK)
def test_a_hostile_zendesk_destination_is_refused_as_the_function_refuses_it(
    aws: Any, load_function: Callable[..., ModuleType], monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    # The redirect corpus every flow refuses, aimed at the Zendesk account's host
    assert function_accepts(load_function("zendesk", **ZENDESK), "zendesk", url) is None
    argv = ("--provider=zendesk", "--email=jane@example.com", f"--redirect-to={url}")
    status, out, err = run(monkeypatch, bridge(settings={**SETTINGS, **ZENDESK}), *argv)
    assert (status, out) == (2, "")
    assert err.count("\n") == 1
