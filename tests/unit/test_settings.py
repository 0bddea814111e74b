"""Configuration faults stop a cold start with the variable's name; good values parse once."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest

from local.vendors import SPECS
from local.vendors.site import StandInSpec
from sso_bridge.errors import ConfigurationError
from sso_bridge.settings import CommonSettings, env_hostnames, env_url
from tests.helpers import SECRET_IDS

GOOD = {
    "LOGIN_TOKEN_SECRET_ID": "sso/login",
    "PLATFORM_LOGIN_URL": "https://app.example.com/login",
    "SPENT_LINKS_TABLE_NAME": "spent",
    "LINK_REVOCATIONS_TABLE_NAME": "revoked",
}


def test_defaults_are_documented_values() -> None:
    settings = CommonSettings.from_env(GOOD, portal_name="the help center")
    assert settings.login_token_max_ttl == 300
    assert settings.link_token_max_ttl == 7 * 86400
    assert settings.portal_name == "the help center"
    assert settings.login_token_leeway == 30
    assert settings.referrer_policy == "no-referrer"
    assert settings.secrets_max_age == 300


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("LOGIN_TOKEN_SECRET_ID", "", "LOGIN_TOKEN_SECRET_ID is required"),
        ("PLATFORM_LOGIN_URL", "", "PLATFORM_LOGIN_URL or OIDC_ISSUER is required"),
        ("PLATFORM_LOGIN_URL", "http://app.example.com/login", "PLATFORM_LOGIN_URL must be an absolute https"),
        ("PLATFORM_LOGIN_URL", "/login", "PLATFORM_LOGIN_URL must be an absolute https"),
        ("PLATFORM_LOGIN_URL", "https://user@app.example.com/", "PLATFORM_LOGIN_URL must be an absolute https"),
        ("LOGIN_TOKEN_MAX_TTL", "forever", "LOGIN_TOKEN_MAX_TTL must be a whole number"),
        ("LOGIN_TOKEN_MAX_TTL", "10", "LOGIN_TOKEN_MAX_TTL must be between"),
        ("LOGIN_TOKEN_MAX_TTL", "86400", "LOGIN_TOKEN_MAX_TTL must be between 30 and 3600"),
        ("LINK_TOKEN_MAX_TTL", "2592001", "LINK_TOKEN_MAX_TTL must be between 300 and 2592000"),
        ("SPENT_LINKS_TABLE_NAME", "", "SPENT_LINKS_TABLE_NAME is required"),
        ("LINK_REVOCATIONS_TABLE_NAME", " ", "LINK_REVOCATIONS_TABLE_NAME is required"),
        ("PORTAL_NAME", "Help\ncenter", "PORTAL_NAME must be one line"),
        ("PORTAL_NAME", "x" * 81, "PORTAL_NAME must be one line of at most 80"),
        ("LOGIN_TOKEN_LEEWAY", "3600", "LOGIN_TOKEN_LEEWAY must be between"),
        ("REFERRER_POLICY", "unsafe-url", "REFERRER_POLICY must be one of"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        CommonSettings.from_env({**GOOD, name: value})


def test_local_stack_may_use_plain_http_on_localhost() -> None:
    assert env_url({"U": "http://localhost:3000/_platform/login"}, "U") == "http://localhost:3000/_platform/login"


def test_host_lists_are_exact_lower_case_names() -> None:
    assert env_hostnames({"H": " Portal.Example.com,www.shop.example.com ,"}, "H") == {
        "portal.example.com",
        "www.shop.example.com",
    }


@pytest.mark.parametrize("value", ["https://portal.example.com", "*.example.com", "portal.example.com/x", "a b.com"])
def test_host_lists_refuse_anything_but_host_names(value: str) -> None:
    with pytest.raises(ConfigurationError, match="H must hold bare host names"):
        env_hostnames({"H": value}, "H")


def test_the_public_host_is_off_unless_set() -> None:
    assert CommonSettings.from_env(GOOD).public_host is None
    assert CommonSettings.from_env({**GOOD, "PUBLIC_HOST": " "}).public_host is None
    assert CommonSettings.from_env({**GOOD, "PUBLIC_HOST": " SSO.Example.com "}).public_host == "sso.example.com"


@pytest.mark.parametrize(
    "value",
    [
        "https://sso.example.com",
        "sso.example.com/",
        "sso.example.com/portal",
        "sso.example.com:443",
        "user@sso.example.com",
        "sso example.com",
        "sso.example.com,other.example.com",
        "SSO.\u00c9XAMPLE.COM",  # upper-case Unicode: lower-cases to a non-ASCII host
        "\u212aelvin.example.com",  # the Kelvin sign lower-cases to an ASCII "k"
        "localhost",
        "*.example.com",
        "sso.example.com.",
    ],
)
def test_a_bad_public_host_stops_the_cold_start_naming_it(value: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^PUBLIC_HOST must hold bare host names"):
        CommonSettings.from_env({**GOOD, "PUBLIC_HOST": value})


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.vendor)
def test_no_portal_signs_with_the_login_token_key(
    spec: StandInSpec, monkeypatch: pytest.MonkeyPatch, load_function: Callable[..., ModuleType]
) -> None:
    # A vendor key that is the login-token key would hand out vendor tokens signed with the key that vouches for
    # users: every function refuses to start with it, naming its variable
    refusal = f"^{spec.secret_setting}\\b.*must not (be|use) the login-token secret"
    with pytest.raises(ConfigurationError, match=refusal):
        load_function(spec.vendor, **{spec.secret_setting: SECRET_IDS["login"]})
