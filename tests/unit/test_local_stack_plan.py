"""What `make run` decides before it starts anything: environments, keys, vendor stand-ins, ports.

``plan_stack`` binds nothing, so these run with sockets blocked.
"""

from __future__ import annotations

import errno
import json
import re
from html import unescape
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from local.config import Config, PortUse, StartError, plan_ports, port_conflict, port_unavailable
from local.identity_provider import CALLBACK_PATH
from local.lambdas import LOCAL_DEFAULTS, function_environment
from local.listing import Listing, banner
from local.plan import StackPlan, enabled_template, function_name, plan_stack
from local.server import App, Reply, Request
from local.standins import StandIn, kustomer_brands
from local.template import functions, has_default_route, load_template
from local.vendors import SPECS
from tests.helpers import VENDOR_KEYS

TEMPLATE = load_template()
WORKSPACE_HOST = "yourworkspace.myclickfunnels.com"
VENDORS = [function_name(spec) for spec in functions(TEMPLATE)]  # clickfunnels, kustomer, happyfox, ... in order
DEFAULT_HOSTS = [
    "yourworkspace.myclickfunnels.com",
    "yourcompany.kustomer.help",
    "acme.kustomer.help",
    "yourcompany.happyfox.com",
    "yourcompany.zendesk.com",
    "yourcompany.canny.io",  # Canny: the board, then its SSO endpoint on canny.io
    "canny.io",
    "yourcompany.discourse.group",
    "yourcompany.freshdesk.com",  # Freshworks: the portal, then the host of its redirect URL
    "yourcompany.freshworks.com",
]
URL_COUNT = len(VENDORS)  # every vendor has a function URL: PORT+1 ... PORT+7
FIRST_STANDIN = 3000 + 1 + URL_COUNT
PROVIDER_PORT = FIRST_STANDIN + len(DEFAULT_HOSTS)


def plan(**shell: str) -> StackPlan:
    return plan_stack(Config.from_env(shell), shell, TEMPLATE)


def environment(stack: StackPlan, variable: str) -> dict[str, str]:
    """The effective environment of the function that reads ``variable``."""
    return next(env for env in stack.effective if variable in env)


def secret(stack: StackPlan, name: str) -> str:
    return next(item.value for item in stack.secrets if item.name == name)


# Environments.


def test_local_defaults_make_every_kustomer_link_land_somewhere() -> None:
    env = environment(plan(), "KUSTOMER_SECRET_ID")
    assert env["KUSTOMER_PORTAL_URL"] == "https://yourcompany.kustomer.help/login"
    assert env["KUSTOMER_BRAND_SECRET_PREFIX"] == "sso-bridge/kustomer/"
    assert json.loads(env["KUSTOMER_BRANDS"]) == {
        "acme": {
            "secret_id": "sso-bridge/kustomer/acme",
            "redirect_hosts": ["acme.kustomer.help"],
            "portal_url": "https://acme.kustomer.help/login",
        }
    }


def test_the_shell_wins_over_local_defaults_even_when_empty() -> None:
    env = environment(plan(KUSTOMER_PORTAL_URL="", KUSTOMER_BRANDS=""), "KUSTOMER_SECRET_ID")
    assert env["KUSTOMER_PORTAL_URL"] == ""
    assert env["KUSTOMER_BRANDS"] == ""


def test_local_defaults_replace_parameter_defaults_but_never_template_literals() -> None:
    [spec] = [spec for spec in functions(TEMPLATE) if "KUSTOMER_PORTAL_URL" in spec.environment]
    defaults = {**LOCAL_DEFAULTS, "POWERTOOLS_SERVICE_NAME": "not-this", "LOGIN_TOKEN_MAX_TTL": "120"}
    env = function_environment(spec, TEMPLATE, resources={}, defaults=defaults)
    assert env["POWERTOOLS_SERVICE_NAME"] == "kustomer"  # a literal in the template
    assert env["KUSTOMER_PORTAL_URL"] == LOCAL_DEFAULTS["KUSTOMER_PORTAL_URL"]  # the parameter's default is ""
    assert env["LOGIN_TOKEN_MAX_TTL"] == "120"
    assert env["KUSTOMER_BRAND_SECRET_PREFIX"] == "sso-bridge/kustomer/"  # !Sub: only a deployment knows it


def test_kustomer_brands_are_read_leniently_the_function_judges_them() -> None:
    env = {"KUSTOMER_SECRET_ID": "s", "KUSTOMER_REDIRECT_HOSTS": "a.example.com, B.example.com"}
    for raw in ("not json", "[1]", '{"x": 1}', '{"y": {"redirect_hosts": []}}'):
        assert [brand.name for brand in kustomer_brands({**env, "KUSTOMER_BRANDS": raw})] == [None]
    [default] = kustomer_brands({**env, "KUSTOMER_PORTAL_URL": "https://portal.example.com/login"})
    assert default.hosts == ("portal.example.com", "a.example.com", "b.example.com")
    assert default.path == "/kustomer/login"


# Keys.


def test_the_demo_brand_gets_a_key_printed_like_the_others() -> None:
    stack = plan()
    [acme] = [item for item in stack.secrets if item.name == "sso-bridge/kustomer/acme"]
    assert acme.seed_var == "KUSTOMER_ACME_JWT_SECRET"
    assert acme.generated
    assert acme.env_var is None  # not a function variable: not in the state file's secret_ids


def test_the_demo_brand_key_can_be_set_from_the_shell() -> None:
    [acme] = [item for item in plan(KUSTOMER_ACME_JWT_SECRET="k" * 40).secrets if item.name.endswith("/acme")]
    assert acme.value == "k" * 40
    assert not acme.generated


def test_brands_from_the_shell_are_the_operators_to_create_unless_their_key_is_given() -> None:
    brands = {"beta": {"secret_id": "sso-bridge/kustomer/beta", "redirect_hosts": ["beta.example.com"]}}
    names = {item.name for item in plan(KUSTOMER_BRANDS=json.dumps(brands)).secrets}
    assert not {"sso-bridge/kustomer/beta", "sso-bridge/kustomer/acme"} & names

    given = plan(KUSTOMER_BRANDS=json.dumps(brands), KUSTOMER_BETA_JWT_SECRET="b" * 40)
    assert secret(given, "sso-bridge/kustomer/beta") == "b" * 40


# Vendor stand-ins.


def test_every_placeholder_vendor_host_gets_a_stand_in_with_the_seeded_key() -> None:
    stack = plan()
    assert [site.host for site in stack.standins] == DEFAULT_HOSTS
    cf, kustomer, acme, happyfox, *_ = stack.standins
    assert cf.key == secret(stack, "sso-bridge/clickfunnels")
    assert cf.entry == "/"
    assert (kustomer.key, kustomer.entry) == (secret(stack, "sso-bridge/kustomer"), "/login")
    assert kustomer.login_url == "http://localhost:3000/kustomer/login"
    assert acme.key == secret(stack, "sso-bridge/kustomer/acme")
    assert acme.login_url == "http://localhost:3000/kustomer/brands/acme/login"
    assert happyfox.key == secret(stack, "sso-bridge/happyfox")
    assert happyfox.login_url == "http://localhost:3000/happyfox/login"
    assert cf.label == "ClickFunnels customer center for yourworkspace.myclickfunnels.com"
    assert acme.label == "Kustomer help center for acme.kustomer.help, brand acme"
    canny_io = next(site for site in stack.standins if site.host == "canny.io")
    assert canny_io.label == "Canny feedback board: canny.io, where the bridge sends you back"


def test_stand_ins_take_the_ports_after_the_function_urls() -> None:
    stack = plan()
    assert [use.port for use in stack.url_uses.values()] == list(range(3001, FIRST_STANDIN))
    assert [(site.host, use.port) for site, use in stack.standin_uses] == list(
        zip(DEFAULT_HOSTS, range(FIRST_STANDIN, PROVIDER_PORT), strict=True)
    )
    assert stack.ports[-1] == PortUse(4566, "moto (the AWS endpoint)", "LOCAL_AWS_PORT")


def test_a_real_vendor_host_set_in_the_shell_has_no_stand_in() -> None:
    stack = plan(CLICKFUNNELS_WORKSPACE_DOMAIN="www.shop.example.com", HAPPYFOX_ACCOUNT_URL="https://acme.happyfox.com")
    assert [site.host for site in stack.standins] == [
        host for host in DEFAULT_HOSTS if host not in (WORKSPACE_HOST, "yourcompany.happyfox.com")
    ]


def test_a_brand_whose_key_the_stack_does_not_know_has_no_stand_in() -> None:
    brands = {"acme": {"secret_id": "sso-bridge/kustomer/acme", "redirect_hosts": ["acme.kustomer.help"]}}
    stack = plan(KUSTOMER_BRANDS=json.dumps(brands))  # the operator creates that secret: its key is theirs
    assert "acme.kustomer.help" not in [site.host for site in stack.standins]


def test_vendor_standins_off_plans_none() -> None:
    stack = plan(VENDOR_STANDINS="off")
    assert stack.standins == []
    # the API, the function URLs, then the OpenID provider
    assert [use.port for use in stack.ports] == [*range(3000, FIRST_STANDIN + 1), 4566]
    assert [use.port for use in plan(VENDOR_STANDINS="off", OIDC="off").ports] == [*range(3000, FIRST_STANDIN), 4566]


# Every vendor from its stand-in module's SPEC (local.vendors.SPECS): the four that came after the first three.

# vendor: (the seed variable, the bridge's route, its stand-in hosts, the page to start on)
NEW_VENDORS = {
    "zendesk": ("ZENDESK_JWT_SECRET", "/zendesk/login", ("yourcompany.zendesk.com",), "/hc/en-us"),
    "canny": ("CANNY_JWT_SECRET", "/canny/login", ("yourcompany.canny.io", "canny.io"), "/feature-requests"),
    "discourse": ("DISCOURSE_CONNECT_SECRET", "/discourse/login", ("yourcompany.discourse.group",), "/"),
    "freshworks": (
        "FRESHWORKS_PRIVATE_KEY_PEM",
        "/freshworks/login",
        ("yourcompany.freshdesk.com", "yourcompany.freshworks.com"),
        "/",
    ),
}
SEED_VARS = {
    "clickfunnels": "CLICKFUNNELS_JWT_SECRET",
    "kustomer": "KUSTOMER_JWT_SECRET",
    "happyfox": "HAPPYFOX_JWT_SECRET",
    **{vendor: seed for vendor, (seed, *_) in NEW_VENDORS.items()},
}


def standins_of(stack: StackPlan, vendor: str) -> list[StandIn]:
    return [site for site in stack.standins if site.vendor == vendor]


def test_every_vendor_has_a_spec_that_matches_its_function() -> None:
    assert [spec.vendor for spec in SPECS] == VENDORS  # template order
    for spec, function in zip(SPECS, functions(TEMPLATE), strict=True):
        assert {spec.host_setting, spec.secret_setting} <= set(function.environment)
        assert spec.login_path in [route.path for route in function.routes]
        assert set(spec.defaults) <= set(function.environment)


def test_the_new_vendors_are_served_although_a_deployment_leaves_them_off() -> None:
    parameters = TEMPLATE["Parameters"]
    for vendor in NEW_VENDORS:
        [function] = [spec for spec in functions(TEMPLATE) if function_name(spec) == vendor]
        switch = f"Enable{function.logical_id.removesuffix('Function')}"
        assert parameters[switch]["Default"] == "false"  # the deployed default
        assert function.condition is not None
    assert served(plan()) == VENDORS
    assert set(NEW_VENDORS) < set(VENDORS)


@pytest.mark.parametrize("vendor", list(NEW_VENDORS))
def test_each_new_vendor_gets_a_stand_in_per_host_with_its_key_and_route(vendor: str) -> None:
    _, route, hosts, entry = NEW_VENDORS[vendor]
    stack = plan()
    sites = standins_of(stack, vendor)
    assert tuple(site.host for site in sites) == hosts
    assert {site.key for site in sites} == {secret(stack, f"sso-bridge/{vendor}")}
    assert {site.login_url for site in sites} == {f"http://localhost:3000{route}"}
    assert sites[0].entry == entry
    assert [site.start for site in sites] == [True] + [False] * (len(hosts) - 1)  # where users start: the first
    assert [site.vendor for site in plan(VENDORS=vendor).standins] == [vendor] * len(hosts)


def test_the_placeholders_let_every_new_function_start() -> None:
    assert LOCAL_DEFAULTS["ZENDESK_ACCOUNT_URL"] == "https://yourcompany.zendesk.com"
    assert LOCAL_DEFAULTS["CANNY_REDIRECT_HOSTS"] == "yourcompany.canny.io"
    assert LOCAL_DEFAULTS["CANNY_COMPANY_ID"]
    assert LOCAL_DEFAULTS["DISCOURSE_URL"] == "https://yourcompany.discourse.group"
    assert LOCAL_DEFAULTS["FRESHWORKS_CLIENT_ID"]
    assert LOCAL_DEFAULTS["FRESHWORKS_REDIRECT_HOSTS"] == "yourcompany.freshworks.com"
    assert LOCAL_DEFAULTS["FRESHWORKS_PORTAL_URL"] == "https://yourcompany.freshdesk.com/support/login"
    env = environment(plan(), "CANNY_SECRET_ID")
    assert (env["CANNY_COMPANY_ID"], env["CANNY_PORTAL_URL"]) == (
        LOCAL_DEFAULTS["CANNY_COMPANY_ID"],
        "https://yourcompany.canny.io/",
    )


@pytest.mark.parametrize("vendor", [vendor for vendor in SEED_VARS if vendor != "freshworks"])
def test_a_vendor_key_is_seeded_from_its_spec_variable_else_generated(vendor: str) -> None:
    seed = SEED_VARS[vendor]
    given = plan(**{seed: f"{vendor}-key-from-the-shell-0123456789"})
    [item] = [item for item in given.secrets if item.name == f"sso-bridge/{vendor}"]
    assert (item.seed_var, item.value, item.generated) == (seed, f"{vendor}-key-from-the-shell-0123456789", False)
    first, second = plan(), plan()
    assert secret(first, f"sso-bridge/{vendor}") != secret(second, f"sso-bridge/{vendor}")  # new at each start
    assert [item.generated for item in first.secrets if item.name == f"sso-bridge/{vendor}"] == [True]


def test_discourse_is_seeded_from_its_connect_secret_not_a_jwt_secret() -> None:
    stack = plan(DISCOURSE_JWT_SECRET="not-this-one-0123456789abcdef")
    [item] = [item for item in stack.secrets if item.name == "sso-bridge/discourse"]
    assert item.seed_var == "DISCOURSE_CONNECT_SECRET"
    assert item.generated
    assert item.value != "not-this-one-0123456789abcdef"


def rsa_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def test_freshworks_gets_a_new_rsa_private_key_unless_the_shell_gives_one() -> None:
    stack = plan()
    [item] = [item for item in stack.secrets if item.name == "sso-bridge/freshworks"]
    assert (item.seed_var, item.kind, item.generated) == ("FRESHWORKS_PRIVATE_KEY_PEM", "rsa", True)
    assert item.value.startswith("-----BEGIN PRIVATE KEY-----\n")
    assert rsa_key(item.value).key_size >= 2048  # the least the function signs with
    assert item.value != secret(plan(), "sso-bridge/freshworks")
    assert {site.key for site in standins_of(stack, "freshworks")} == {item.value}

    given = plan(FRESHWORKS_PRIVATE_KEY_PEM=VENDOR_KEYS["freshworks"])
    assert secret(given, "sso-bridge/freshworks") == VENDOR_KEYS["freshworks"]
    assert [site.key for site in standins_of(given, "freshworks")] == [VENDOR_KEYS["freshworks"]] * 2


def test_the_banner_prints_each_generated_key_to_export_but_names_the_rsa_key_only() -> None:
    stack = plan()
    text = banner(stack.config, Listing([], []), stack.secrets, stack, None)
    assert f"    DISCOURSE_CONNECT_SECRET={secret(stack, 'sso-bridge/discourse')}\n" in text
    assert f"    CANNY_JWT_SECRET={secret(stack, 'sso-bridge/canny')}\n" in text
    [line] = [line for line in text.splitlines() if "FRESHWORKS_PRIVATE_KEY_PEM" in line]
    assert line.strip() == (
        "FRESHWORKS_PRIVATE_KEY_PEM: a new RSA private key (PEM, not shown; "
        "make vendor-public-key PROVIDER=freshworks LOCAL=1 prints its public key)"
    )
    assert "PRIVATE KEY-----" not in text


def test_a_freshworks_key_that_is_no_rsa_key_is_seeded_for_the_function_to_refuse_without_stand_ins() -> None:
    stack = plan(FRESHWORKS_PRIVATE_KEY_PEM="REPLACE_ME")  # as `make smoke LOCAL=1` is tried
    assert secret(stack, "sso-bridge/freshworks") == "REPLACE_ME"
    assert "freshworks" in served(stack)
    assert standins_of(stack, "freshworks") == []


@pytest.mark.parametrize(
    ("shell", "vendor"),
    [
        (
            {"CANNY_PORTAL_URL": "https://feedback.example.com/", "CANNY_REDIRECT_HOSTS": "feedback.example.com"},
            "canny",
        ),
        ({"FRESHWORKS_PORTAL_URL": "https://help.example.com/support/login"}, "freshworks"),
        ({"ZENDESK_ACCOUNT_URL": "https://acme.zendesk.com"}, "zendesk"),
        ({"DISCOURSE_URL": "https://community.example.com"}, "discourse"),
    ],
)
def test_a_real_host_for_a_vendor_serves_none_of_its_hosts(shell: dict[str, str], vendor: str) -> None:
    # Canny's real board signs in at the real canny.io, Freshworks' real portal redirects to its real account
    assert standins_of(plan(**shell), vendor) == []


def log_in_href(reply: Reply) -> str | None:
    found = re.search(r'<a href="([^"]+)">(?:Log in|Sign in)</a>', reply.body.decode())
    return unescape(found.group(1)) if found else None


def get(app: App, target: str) -> Reply:
    return app(Request("GET", target, [("Host", "localhost")], b"", "127.0.0.1", "HTTP/1.1", 3000))


def test_every_stand_in_opens_on_its_entry_page_and_logs_in_through_the_bridge() -> None:
    starts = []
    for site in plan().standins:
        app = site.app()
        page = get(app, site.entry)
        assert page.status == 200, (site.host, site.entry)
        href = log_in_href(page)
        if href is None:
            continue
        # the link itself, or the stand-in's own start page (Discourse, Freshworks), leads to the bridge's route
        if href.startswith("/"):
            start = get(app, href)
            assert start.status == 302
            href = dict(start.headers)["Location"]
        assert href.partition("?")[0] == site.login_url, (site.host, href)
        starts.append(site.vendor)
    assert set(starts) == set(VENDORS) - {"clickfunnels"}  # ClickFunnels' customer center has no Log in of its own


# Ports.


def test_moto_among_the_function_url_ports_names_both_settings() -> None:
    with pytest.raises(StartError) as raised:
        plan(PORT="3000", LOCAL_AWS_PORT="3002")
    assert str(raised.value) == (
        "LOCAL_AWS_PORT=3002 collides with PORT=3000: port 3002 is the kustomer function URL (PORT+2), and the "
        f"stack takes ports 3000-{PROVIDER_PORT} from PORT. "
        f"Set LOCAL_AWS_PORT outside 3000-{PROVIDER_PORT}, or move PORT."
    )


def test_moto_on_a_stand_in_port_collides_and_only_then() -> None:
    port = FIRST_STANDIN + DEFAULT_HOSTS.index("yourcompany.happyfox.com")
    offset = port - 3000
    with pytest.raises(
        StartError, match=rf"port {port} is the stand-in for yourcompany\.happyfox\.com \(PORT\+{offset}\)"
    ):
        plan(LOCAL_AWS_PORT=str(port))
    assert plan(LOCAL_AWS_PORT=str(port), VENDOR_STANDINS="off", OIDC="off").ports[-1].port == port


def test_moto_on_the_api_port_collides() -> None:
    with pytest.raises(StartError, match=r"^LOCAL_AWS_PORT=3000 collides with PORT=3000: port 3000 is the HTTP API"):
        plan(LOCAL_AWS_PORT="3000")


def test_ports_past_65535_say_which_setting_to_lower() -> None:
    offset = 1 + URL_COUNT  # the first stand-in
    with pytest.raises(
        StartError, match=rf"^PORT={65536 - offset} puts the stand-in for .* on port 65536 \(PORT\+{offset}\)"
    ):
        plan(PORT=str(65536 - offset))


def test_a_busy_port_names_the_setting_to_change() -> None:
    busy = OSError(errno.EADDRINUSE, "Address already in use")
    function_url = plan_ports(Config.from_env({}), ["the kustomer function URL"])[1]
    assert port_unavailable(function_url, busy) == (
        "Port 3001 (the kustomer function URL, PORT+1) is in use by another program: "
        "set PORT to the first of a block of free ports"
    )
    moto = PortUse(4566, "moto (the AWS endpoint)", "LOCAL_AWS_PORT")
    assert port_unavailable(moto, busy) == (
        "Port 4566 (moto (the AWS endpoint)) is in use by another program: set LOCAL_AWS_PORT to a free port"
    )


def test_a_plan_without_collisions_passes() -> None:
    assert port_conflict(plan_ports(Config.from_env({"LOCAL_AWS_PORT": "3004"}), ["a", "b", "c"])) is None


# Settings.


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PORT", "http", "PORT must be a port number, got 'http'"),
        ("LOCAL_AWS_PORT", "x", "LOCAL_AWS_PORT must be a port number, got 'x'"),
        ("VENDOR_STANDINS", "maybe", "VENDOR_STANDINS must be on or off, got 'maybe'"),
        ("LOCAL_LOGS", "all", "LOCAL_LOGS must be line or json, got 'all'"),
    ],
)
def test_a_bad_setting_is_named(variable: str, value: str, message: str) -> None:
    with pytest.raises(StartError) as raised:
        Config.from_env({variable: value})
    assert str(raised.value) == message


def test_defaults() -> None:
    config = Config.from_env({})
    assert (config.port, config.aws_port, config.host) == (3000, 4566, "127.0.0.1")
    assert config.standins
    assert config.log_format == "line"
    assert config.platform_login_url is None


# Sign-in: the local OpenID provider, another provider, or the demo platform.


def oidc_settings(stack: StackPlan) -> list[dict[str, str]]:
    """Every function's OIDC variables, as the handlers see them."""
    return [{name: value for name, value in env.items() if name.startswith("OIDC_")} for env in stack.effective]


def test_by_default_signed_out_users_go_to_the_local_provider_after_the_stand_ins() -> None:
    stack = plan()
    assert stack.config.oidc == "auto"
    assert stack.provider is not None
    assert stack.provider_use == PortUse(PROVIDER_PORT, "the local OpenID provider", "PORT", PROVIDER_PORT - 3000)
    assert stack.oidc_issuer == stack.provider.issuer == f"http://localhost:{PROVIDER_PORT}"
    secret_item = stack.oidc_client_secret
    assert secret_item is not None
    assert (secret_item.name, secret_item.seed_var, secret_item.generated) == (
        "sso-bridge/oidc-client",
        "OIDC_CLIENT_SECRET",
        True,
    )
    for env in oidc_settings(stack):
        assert env["OIDC_ISSUER"] == f"http://localhost:{PROVIDER_PORT}"
        assert env["OIDC_CLIENT_ID"] == "sso-bridge-local" == stack.provider.client_id
        assert env["OIDC_CLIENT_SECRET_ID"] == "sso-bridge/oidc-client"
    # The bridge's callback on the HTTP API and on every function URL, as a browser may name them
    hosts = ("localhost", "127.0.0.1")
    assert stack.provider.redirect_uris == tuple(
        f"http://{host}:{port}/oidc/callback" for port in range(3000, FIRST_STANDIN) for host in hosts
    )
    assert stack.provider.post_logout_redirect_uris == ("http://localhost:3000/", "http://127.0.0.1:3000/")


def test_the_shell_sets_the_local_clients_secret_and_id() -> None:
    stack = plan(OIDC_CLIENT_SECRET="from-the-shell-0123456789", OIDC_CLIENT_ID="my-bridge")
    assert stack.provider is not None
    assert stack.provider.client_id == "my-bridge"
    secret_item = stack.oidc_client_secret
    assert secret_item is not None
    assert (secret_item.value, secret_item.generated) == ("from-the-shell-0123456789", False)
    assert {env["OIDC_CLIENT_ID"] for env in oidc_settings(stack)} == {"my-bridge"}


def test_a_platform_logout_url_is_registered_for_the_providers_logout() -> None:
    stack = plan(PLATFORM_LOGOUT_URL="http://localhost:3000/signed-out")
    assert stack.provider is not None
    assert "http://localhost:3000/signed-out" in stack.provider.post_logout_redirect_uris


@pytest.mark.parametrize("switch", ["off", "0", "false", "no", "OFF"])
def test_oidc_off_signs_in_at_the_demo_platform_with_no_oidc_settings(switch: str) -> None:
    stack = plan(OIDC=switch)
    assert (stack.config.oidc, stack.provider, stack.oidc_issuer, stack.oidc_client_secret) == ("off", None, None, None)
    assert all(not env.get("OIDC_ISSUER") for env in stack.effective)
    assert "the local OpenID provider" not in [use.what for use in stack.ports]


def test_your_own_platform_means_no_provider_unless_asked_for() -> None:
    assert plan(PLATFORM_LOGIN_URL="https://platform.example.com/login").provider is None
    both = plan(PLATFORM_LOGIN_URL="https://platform.example.com/login", OIDC="on")
    assert both.config.oidc == "local"
    assert both.provider is not None
    assert environment(both, "PLATFORM_LOGIN_URL")["PLATFORM_LOGIN_URL"] == "https://platform.example.com/login"


def test_a_provider_of_your_own_is_used_as_it_is() -> None:
    stack = plan(
        OIDC_ISSUER="https://login.example.com/realms/acme",
        OIDC_CLIENT_ID="sso-bridge",
        OIDC_CLIENT_SECRET="the-real-client-secret",
    )
    assert stack.config.oidc == "external"
    assert stack.provider is None
    assert "the local OpenID provider" not in [use.what for use in stack.ports]
    assert stack.oidc_issuer == "https://login.example.com/realms/acme"
    for env in oidc_settings(stack):
        assert env["OIDC_ISSUER"] == "https://login.example.com/realms/acme"
        assert env["OIDC_CLIENT_ID"] == "sso-bridge"
        assert env["OIDC_CLIENT_SECRET_ID"] == "sso-bridge/oidc-client"
    assert secret(stack, "sso-bridge/oidc-client") == "the-real-client-secret"


@pytest.mark.parametrize(
    ("shell", "message"),
    [
        ({"OIDC": "maybe"}, "OIDC must be on or off, got 'maybe'"),
        (
            {"OIDC": "off", "OIDC_ISSUER": "https://login.example.com", "OIDC_CLIENT_SECRET": "x"},
            "OIDC=off and OIDC_ISSUER are both set: unset one of them",
        ),
        (
            {"OIDC_ISSUER": "https://login.example.com"},
            "OIDC_ISSUER is set: set OIDC_CLIENT_SECRET to the bridge's client secret at that provider "
            "(and OIDC_CLIENT_ID to its client id)",
        ),
    ],
)
def test_contradictory_or_incomplete_oidc_settings_are_named(shell: dict[str, str], message: str) -> None:
    with pytest.raises(StartError) as raised:
        Config.from_env(shell)
    assert str(raised.value) == message


# VENDORS: only some vendors.


def served(stack: StackPlan) -> list[str]:
    return [function_name(spec) for spec in stack.specs]


def test_every_vendor_by_default() -> None:
    assert served(plan()) == VENDORS
    assert len(VENDORS) >= 3


def test_vendors_serves_only_those_in_template_order() -> None:
    stack = plan(VENDORS=" HappyFox ,kustomer,,happyfox")
    assert served(stack) == ["kustomer", "happyfox"]
    # Their function URLs take the ports after the API, then their stand-ins only
    assert [use.what for use in stack.url_uses.values()] == ["the kustomer function URL", "the happyfox function URL"]
    assert [use.port for use in stack.url_uses.values()] == [3001, 3002]
    assert [site.vendor for site in stack.standins] == ["kustomer", "kustomer", "happyfox"]
    assert [site.host for site, _ in stack.standin_uses] == DEFAULT_HOSTS[1:4]
    # No ClickFunnels key, route or environment anywhere
    assert "sso-bridge/clickfunnels" not in [item.name for item in stack.secrets]
    assert all("CLICKFUNNELS_SECRET_ID" not in env for env in stack.effective)
    paths = [route.path for spec in stack.specs for route in spec.routes]
    assert not [path for path in paths if path.startswith("/clickfunnels")]


def callback_owners(template: dict[str, Any]) -> list[tuple[str, str]]:
    """(vendor, method) of every function route on /oidc/callback."""
    return [
        (function_name(spec), route.method)
        for spec in functions(template)
        for route in spec.routes
        if route.path == CALLBACK_PATH
    ]


def function_resource(vendor: str, *paths: str) -> dict[str, Any]:
    events = {f"E{i}": {"Type": "HttpApi", "Properties": {"Method": "GET", "Path": p}} for i, p in enumerate(paths)}
    return {
        "Type": "AWS::Serverless::Function",
        "Properties": {"CodeUri": f"functions/{vendor}", "Handler": "app.lambda_handler", "Events": events},
    }


def test_a_callback_route_on_a_switched_off_vendor_moves_to_the_first_enabled_one() -> None:
    # A template whose callback event sits on the first vendor's function (as template.yaml's once did)
    template = {
        "Resources": {
            "AFunction": function_resource("a", "/a/sso", CALLBACK_PATH),
            "BFunction": function_resource("b", "/b/login"),
            "CFunction": function_resource("c", "/c/login"),
        }
    }
    assert callback_owners(enabled_template(template, ["b", "c"])) == [("b", "GET")]
    assert callback_owners(enabled_template(template, ["c"])) == [("c", "GET")]
    assert callback_owners(enabled_template(template, ["a", "c"])) == [("a", "GET")]
    assert [function_name(spec) for spec in functions(enabled_template(template, ["c"]))] == ["c"]
    assert callback_owners(template) == [("a", "GET")]  # the template itself is left as it was


def test_every_choice_of_vendors_serves_the_oidc_callback() -> None:
    # Through a route of an enabled function, or the HTTP API's $default route (the first enabled function)
    for vendor in VENDORS:
        stack = plan(VENDORS=vendor)
        assert callback_owners(stack.template) in ([(vendor, "GET")], [])
        assert callback_owners(stack.template) or has_default_route(stack.template)


def test_the_jti_table_only_with_happyfox() -> None:
    assert "JtiTable" in [table.logical_id for table in plan(VENDORS="happyfox").tables]
    without = [table.logical_id for table in plan(VENDORS="clickfunnels,kustomer").tables]
    assert "JtiTable" not in without
    assert {"SpentLinksTable", "LinkRevocationsTable"} <= set(without)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("intercom", "VENDORS: 'intercom' is not a vendor: choose from "),
        ("happyfox,Zen desk", "VENDORS: 'zen desk' is not a vendor: choose from "),
        ("clickfunnels;kustomer", "VENDORS: 'clickfunnels;kustomer' is not a vendor: choose from "),
        ("", "VENDORS names no vendor: set it to one or more of "),
        (" , ,,", "VENDORS names no vendor: set it to one or more of "),
    ],
)
def test_a_name_that_is_no_vendor_is_refused_naming_the_valid_ones(value: str, says: str) -> None:
    with pytest.raises(StartError) as raised:
        plan(VENDORS=value)
    message = str(raised.value)
    assert message.startswith(says)
    assert ", ".join(VENDORS) in message
    assert "\n" not in message
