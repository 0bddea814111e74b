"""Emulated AWS for the local stack: moto in server mode, seeded with the template's secrets and tables.

Which secrets and tables exist is read from template.yaml (the functions' ``*_SECRET_ID`` variables and every
``AWS::DynamoDB::Table``), so a vendor added there is served locally with no change here; the shell variable
that seeds a vendor's key, and its kind (a secret, or an RSA key), come from its stand-in module's ``SPEC``.
Secrets an operator creates by hand in AWS (a Kustomer brand's) are planned with ``plan_extra_secret``.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal

import boto3
from moto.server import ThreadedMotoServer

from local.template import functions, table_definition
from local.vendors import seed_var as vendor_seed_var
from local.vendors import spec_for_secret

__all__ = [
    "LocalSecret",
    "LocalTable",
    "new_key",
    "plan_extra_secret",
    "plan_secrets",
    "plan_tables",
    "point_sdk_at",
    "seed",
    "start_moto",
]

REGION = "eu-west-1"
KeyKind = Literal["secret", "rsa"]


@dataclass(frozen=True)
class LocalSecret:
    env_var: str | None  # the handlers' variable, e.g. CLICKFUNNELS_SECRET_ID; None for an operator's secret
    logical_id: str | None  # None when the template does not create it
    name: str  # the secret's name in the emulated Secrets Manager
    seed_var: str  # the shell variable that sets its value, e.g. CLICKFUNNELS_JWT_SECRET
    value: str
    generated: bool
    kind: KeyKind = "secret"  # "rsa": a PEM private key (the banner does not print it)


@dataclass(frozen=True)
class LocalTable:
    logical_id: str
    name: str
    env_vars: tuple[str, ...]
    definition: dict[str, Any]
    ttl_attribute: str | None


def _refs(template: dict[str, Any], resource_type: str) -> dict[str, str]:
    """Function variable -> logical id, for variables that ``!Ref`` a resource of ``resource_type``."""
    resources = template.get("Resources", {})
    found: dict[str, str] = {}
    for spec in functions(template):
        for name, value in spec.environment.items():
            target = value.get("Ref") if isinstance(value, dict) else None
            if isinstance(target, str) and resources.get(target, {}).get("Type") == resource_type:
                found[name] = target
    return found


def new_key(kind: KeyKind = "secret") -> str:
    """A key for a seed variable left unset: a random secret, or for ``rsa`` a 2048-bit RSA private key (PKCS#8
    PEM), the least Freshworks' function signs with."""
    if kind != "rsa":
        return secrets.token_urlsafe(48)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem.decode("ascii")


def plan_secrets(template: dict[str, Any], environ: Mapping[str, str]) -> list[LocalSecret]:
    """One secret per ``*_SECRET_ID`` variable; the value from its seed variable, else a new key of its kind."""
    planned = []
    for env_var, logical_id in _refs(template, "AWS::SecretsManager::Secret").items():
        if not env_var.endswith("_SECRET_ID"):
            continue
        seed_var = vendor_seed_var(env_var)
        spec = spec_for_secret(env_var)
        kind: KeyKind = spec.key_kind if spec is not None else "secret"
        default_name = "sso-bridge/" + env_var.removesuffix("_SECRET_ID").lower().replace("_", "-")
        value = environ.get(seed_var, "")
        planned.append(
            LocalSecret(
                env_var=env_var,
                logical_id=logical_id,
                name=environ.get(env_var) or default_name,
                seed_var=seed_var,
                value=value or new_key(kind),
                generated=not value,
                kind=kind,
            )
        )
    return planned


def plan_extra_secret(name: str, seed_var: str, environ: Mapping[str, str]) -> LocalSecret:
    """A secret the template does not create (an operator makes it by hand), seeded like the others."""
    value = environ.get(seed_var, "")
    return LocalSecret(
        env_var=None,
        logical_id=None,
        name=name,
        seed_var=seed_var,
        value=value or secrets.token_urlsafe(48),
        generated=not value,
    )


def plan_tables(template: dict[str, Any], environ: Mapping[str, str]) -> list[LocalTable]:
    """Every DynamoDB table of the template, named after the variable that refers to it when the shell sets it."""
    refs = _refs(template, "AWS::DynamoDB::Table")
    planned = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::DynamoDB::Table":
            continue
        env_vars = tuple(sorted(name for name, target in refs.items() if target == logical_id))
        shell_name = next((environ[name] for name in env_vars if environ.get(name)), None)
        ttl = resource.get("Properties", {}).get("TimeToLiveSpecification") or {}
        planned.append(
            LocalTable(
                logical_id=logical_id,
                name=shell_name or f"sso-bridge-{logical_id}",
                env_vars=env_vars,
                definition=table_definition(logical_id, template),
                ttl_attribute=ttl.get("AttributeName") if ttl.get("Enabled", True) is not False else None,
            )
        )
    return planned


def start_moto(host: str, port: int) -> ThreadedMotoServer:
    """Moto as a real endpoint; fails fast when the port is taken (moto's own start would hang)."""
    with socket.socket() as probe:
        probe.bind((host, port))
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    return server


def point_sdk_at(endpoint: str, environ: MutableMapping[str, str]) -> None:
    """Send every boto3 client of this process to ``endpoint`` with dummy credentials, never to AWS."""
    environ.pop("AWS_PROFILE", None)
    environ["AWS_ENDPOINT_URL"] = endpoint
    environ["AWS_ACCESS_KEY_ID"] = "local"
    environ["AWS_SECRET_ACCESS_KEY"] = "local"
    environ["AWS_SESSION_TOKEN"] = "local"
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or REGION
    environ["AWS_REGION"] = environ["AWS_DEFAULT_REGION"] = region


def seed(local_secrets: list[LocalSecret], tables: list[LocalTable]) -> None:
    """Create the secrets and tables in the emulated account (boto3 follows ``AWS_ENDPOINT_URL``)."""
    region = os.environ.get("AWS_REGION", REGION)
    secretsmanager = boto3.client("secretsmanager", region_name=region)
    for item in local_secrets:
        secretsmanager.create_secret(Name=item.name, SecretString=item.value)
    dynamodb = boto3.client("dynamodb", region_name=region)
    for table in tables:
        dynamodb.create_table(TableName=table.name, **table.definition)
        if table.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=table.name,
                TimeToLiveSpecification={"AttributeName": table.ttl_attribute, "Enabled": True},
            )
