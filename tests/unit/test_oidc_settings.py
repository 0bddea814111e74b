"""OpenID Connect settings: off unless OIDC_ISSUER is set; bad values stop the cold start, naming the variable."""

from __future__ import annotations

import pytest

from sso_bridge.errors import ConfigurationError
from sso_bridge.oidc_provider import Provider, is_cognito_issuer
from sso_bridge.settings import CommonSettings, OidcSettings

COMMON = {
    "LOGIN_TOKEN_SECRET_ID": "sso/login",
    "SPENT_LINKS_TABLE_NAME": "spent",
    "LINK_REVOCATIONS_TABLE_NAME": "revoked",
}
OIDC = {
    "OIDC_ISSUER": "https://login.example.com/tenant",
    "OIDC_CLIENT_ID": "bridge",
    "OIDC_CLIENT_SECRET_ID": "sso/oidc-client",
}


def test_unset_issuer_means_platform_sign_in_only() -> None:
    settings = CommonSettings.from_env({**COMMON, "PLATFORM_LOGIN_URL": "https://app.example.com/login"})
    assert settings.oidc is None


def test_issuer_alone_is_enough_and_defaults_are_the_documented_ones() -> None:
    settings = CommonSettings.from_env({**COMMON, **OIDC})
    assert settings.platform_login_url is None
    oidc = settings.oidc
    assert oidc is not None
    assert (oidc.issuer, oidc.client_id, oidc.client_secret_id) == (
        "https://login.example.com/tenant",
        "bridge",
        "sso/oidc-client",
    )
    assert oidc.scopes == "openid email profile"
    assert oidc.client_auth == "client_secret_basic"
    assert oidc.allowed_email_domains == frozenset()
    assert oidc.logout is False
    assert oidc.packages_path == "/opt/oidc-packages"


def test_both_sources_live_side_by_side() -> None:
    settings = CommonSettings.from_env({**COMMON, **OIDC, "PLATFORM_LOGIN_URL": "https://app.example.com/login"})
    assert settings.oidc is not None
    assert settings.platform_login_url == "https://app.example.com/login"


def test_neither_source_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="PLATFORM_LOGIN_URL or OIDC_ISSUER is required"):
        CommonSettings.from_env(COMMON)


def test_client_id_may_come_from_the_secret() -> None:
    oidc = OidcSettings.from_env({**OIDC, "OIDC_CLIENT_ID": ""})
    assert oidc is not None
    assert oidc.client_id is None


def test_a_local_provider_may_use_plain_http() -> None:
    oidc = OidcSettings.from_env({**OIDC, "OIDC_ISSUER": "http://localhost:3010"})
    assert oidc is not None
    assert oidc.issuer == "http://localhost:3010"


def test_domains_are_lower_case_exact_names() -> None:
    oidc = OidcSettings.from_env({**OIDC, "OIDC_ALLOWED_EMAIL_DOMAINS": "Example.com, staff.example.org"})
    assert oidc is not None
    assert oidc.allowed_email_domains == {"example.com", "staff.example.org"}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("OIDC_ISSUER", "http://login.example.com", "OIDC_ISSUER must be an absolute https"),
        ("OIDC_ISSUER", "https://user@login.example.com", "OIDC_ISSUER must be an absolute https"),
        ("OIDC_ISSUER", "https://login.example.com/?tenant=1", "OIDC_ISSUER must have no query"),
        ("OIDC_CLIENT_SECRET_ID", "", "OIDC_CLIENT_SECRET_ID is required"),
        ("OIDC_SCOPES", "email profile", "OIDC_SCOPES must be space-separated scopes including openid"),
        ("OIDC_SCOPES", 'openid "email"', "OIDC_SCOPES must be"),
        ("OIDC_CLIENT_AUTH", "private_key_jwt", "OIDC_CLIENT_AUTH must be one of"),
        ("OIDC_LOGOUT", "yes", "OIDC_LOGOUT must be true or false"),
        ("OIDC_ALLOWED_EMAIL_DOMAINS", "example.com,@evil", "OIDC_ALLOWED_EMAIL_DOMAINS must hold bare host names"),
        ("OIDC_CLIENT_ID", "bridge\nid", "OIDC_CLIENT_ID must be one line"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        CommonSettings.from_env({**COMMON, **OIDC, name: value})


COGNITO_ISSUERS = {
    "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123": True,
    "https://cognito-idp.us-gov-west-1.amazonaws.com/us-gov-west-1_AbCdEf123": True,
    "https://cognito-idp.cn-north-1.amazonaws.com.cn/cn-north-1_AbCdEf123": True,  # the template's AWS::URLSuffix
    # Not Cognito: a look-alike host, a port, another scheme, a path of more, a custom domain, Unicode, any case.
    "https://cognito-idp.eu-west-1.amazonaws.com.evil.example/eu-west-1_AbCdEf123": False,
    "https://evil.example/cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123": False,
    "https://cognito-idp.eu-west-1.amazonaws.com:8443/eu-west-1_AbCdEf123": False,
    "http://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123": False,
    "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123/x": False,
    "https://cognito-idp.eu-west-1.amazonaws.com/": False,
    "https://auth.example.com/eu-west-1_AbCdEf123": False,
    "https://sso-bridge.auth.eu-west-1.amazoncognito.com": False,
    "https://cognito-idp.eu-west-\u0661.amazonaws.com/eu-west-1_AbCdEf123": False,  # an Arabic-Indic digit one
    "https://COGNITO-IDP.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123": False,
    "https://login.example.com/tenant": False,
}


@pytest.mark.parametrize(("issuer", "cognito"), COGNITO_ISSUERS.items())
def test_cognito_is_recognised_by_its_issuer_alone(issuer: str, cognito: bool) -> None:
    """Cognito's logout takes its own parameters; its issuer is fixed (the pool's domain, custom or not, is not)."""
    assert is_cognito_issuer(issuer) is cognito
    assert Provider(issuer).cognito is cognito
