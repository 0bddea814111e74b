"""`make vendor-public-key PROVIDER=freshworks`: the public half of the bridge's Freshworks key, to paste into
Freshworks; the private key never printed, a key the bridge would refuse said in one line with how to make one.

The local stack is a state file whose AWS endpoint is the standard Secrets Manager URL, which moto intercepts;
a deployed stack is a ``Target`` as ``ops.target`` makes it from the stack's outputs (``FreshworksSecretArn``).
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import boto3
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from local.state import write_state
from ops import vendor_public_key
from ops.target import vendor_outputs, vendor_secrets
from tests.helpers import SECRET_IDS, VENDOR_KEYS
from tests.node_jose import verify_with_jose
from tests.unit.test_target import local_state

PRIVATE_PEM = VENDOR_KEYS["freshworks"]
SECRET = SECRET_IDS["freshworks"]
MOTO_ENDPOINT = "https://secretsmanager.eu-west-1.amazonaws.com"  # moto's mock answers it like AWS
FUNCTION_URLS = {"freshworks": "http://localhost:3007/", "happyfox": "http://localhost:3003/"}


def public_pem(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    spki = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return spki.decode()


def pem(key: Any, encryption: Any = None) -> str:
    text: bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        encryption or serialization.NoEncryption(),
    )
    return text.decode()


@pytest.fixture
def local_stack(aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`make run` with Freshworks, whose emulated Secrets Manager is moto's mock."""
    path = tmp_path / "local-stack.json"
    state = local_state(
        aws_endpoint=MOTO_ENDPOINT,
        function_urls=FUNCTION_URLS,
        secret_ids={"LOGIN_TOKEN_SECRET_ID": SECRET_IDS["login"], "FRESHWORKS_SECRET_ID": SECRET},
    )
    write_state(state, path)
    monkeypatch.setenv("LOCAL_STACK_FILE", str(path))
    return aws


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = vendor_public_key.main(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def test_prints_the_public_key_alone_on_stdout(local_stack: Any) -> None:
    # When the operator asks for Freshworks' key of the local stack
    status, out, err = run("--make", "--provider", "freshworks", "--local")

    # Then stdout is exactly the public key's PEM (SubjectPublicKeyInfo), ready to paste or redirect to a file
    assert status == 0, err
    assert out == public_pem(PRIVATE_PEM)
    assert out.startswith("-----BEGIN PUBLIC KEY-----\n")
    # And stderr says which secret and version it read, and where the key goes; the private key is nowhere
    version = local_stack.describe_secret(SecretId=SECRET)["VersionIdsToStages"]
    [current] = [v for v, stages in version.items() if "AWSCURRENT" in stages]
    assert f"{SECRET} (version {current}, 2048 bits)" in err
    assert "Freshworks' Security settings" in err
    for stream in (out, err):
        assert "PRIVATE KEY" not in stream
        assert PRIVATE_PEM.splitlines()[1] not in stream


def test_what_the_bridge_signs_verifies_with_the_printed_key(local_stack: Any) -> None:
    _, printed, _ = run("--provider", "freshworks", "--local")
    now = int(time.time())
    token = jwt.encode({"sub": "s", "email": "e@example.com", "iat": now, "exp": now + 60}, PRIVATE_PEM, "RS256")
    _, claims = verify_with_jose(token, printed, algorithms=["RS256"])
    assert claims["sub"] == "s"


def test_the_provider_is_read_case_insensitively(local_stack: Any) -> None:
    assert run("--provider", " Freshworks ", "--local")[0] == 0


# --- keys the bridge would refuse ----------------------------------------------------------------------------


def test_the_templates_placeholder_says_how_to_make_and_put_a_key(local_stack: Any) -> None:
    local_stack.put_secret_value(SecretId=SECRET, SecretString="REPLACE_ME with an RSA private key (PEM)")
    status, out, err = run("--provider", "freshworks", "--local")
    assert (status, out) == (3, "")
    [line] = err.splitlines()
    assert f"{SECRET} still holds the template's placeholder, not a key" in line
    assert "`openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out freshworks.pem`" in line
    command = f"aws --endpoint-url {MOTO_ENDPOINT} secretsmanager put-secret-value --secret-id {SECRET}"
    assert f"`{command} --secret-string file://freshworks.pem`" in line


UNUSABLE = {
    "not PEM": ("not-a-key-but-a-secret-value-0123456789", "does not hold a PEM private key"),
    "a public key": (public_pem(PRIVATE_PEM), "does not hold a PEM private key"),
    "a 1024-bit key": (pem(rsa.generate_private_key(65537, 1024)), "1024-bit RSA key"),  # noqa: S505 - refused
    "an EC key": (pem(ec.generate_private_key(ec.SECP256R1())), "not an RSA key"),
    "a key with a passphrase": (
        pem(rsa.generate_private_key(65537, 2048), serialization.BestAvailableEncryption(b"pass")),
        "without a passphrase",
    ),
}


@pytest.mark.parametrize(("value", "said"), UNUSABLE.values(), ids=UNUSABLE.keys())
def test_a_key_the_bridge_would_refuse_is_one_line_and_nothing_printed(local_stack: Any, value: str, said: str) -> None:
    local_stack.put_secret_value(SecretId=SECRET, SecretString=value)
    status, out, err = run("--provider", "freshworks", "--local")
    assert (status, out) == (3, "")
    [line] = err.splitlines()
    assert said in line
    assert "openssl genpkey" in line
    secret_text = value.splitlines()[1] if value.startswith("-----") else value  # a PEM's body, or the value
    assert secret_text not in line


def test_a_secret_that_cannot_be_read_is_exit_3(local_stack: Any) -> None:
    local_stack.delete_secret(SecretId=SECRET, ForceDeleteWithoutRecovery=True)
    status, out, err = run("--provider", "freshworks", "--local")
    assert (status, out) == (3, "")
    assert "cannot read the freshworks key of the local stack at http://localhost:3000" in err
    assert "ResourceNotFoundException" in err


def test_no_local_stack_is_exit_3(aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_STACK_FILE", str(tmp_path / "missing.json"))
    status, out, err = run("--provider", "freshworks", "--local")
    assert (status, out) == (3, "")
    assert "make run" in err


# --- usage -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--make"], "PROVIDER is required: freshworks"),
        ([], "--provider is required: freshworks"),
        (["--make", "--provider", "happyfox"], "PROVIDER 'happyfox' has no RSA key"),
        (["--provider", "kustomer"], "--provider 'kustomer' has no RSA key"),
        (["--provider", "nobody\n\x1b[31m"], "'nobody\\\\n\\\\x1b[31m' has no RSA key"),
    ],
)
def test_usage_errors_are_exit_2_before_any_aws_call(local_stack: Any, argv: list[str], said: str) -> None:
    status, out, err = run(*argv, "--local")
    assert (status, out) == (2, "")
    assert said in err
    assert "\x1b" not in err


def test_a_local_stack_without_freshworks_says_how_to_start_it(
    aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "local-stack.json"
    write_state(local_state(aws_endpoint=MOTO_ENDPOINT), path)  # clickfunnels and kustomer only
    monkeypatch.setenv("LOCAL_STACK_FILE", str(path))
    status, _, err = run("--provider", "freshworks", "--local")
    assert status == 2
    assert "the local stack runs without freshworks" in err


# --- a deployed stack ------------------------------------------------------------------------------------------

STACK = "bridge-under-test"


def deploy(aws: Any, *, with_freshworks: bool = True) -> None:
    """A moto CloudFormation stack with the outputs template.yaml gives a stack with (or without) Freshworks."""
    outputs = {"LoginTokenSecretArn": aws.describe_secret(SecretId=SECRET_IDS["login"])["ARN"]}
    outputs[vendor_outputs()["happyfox"]] = "https://hf0123456789abcdef.lambda-url.eu-west-1.on.aws/"
    if with_freshworks:
        outputs[vendor_outputs()["freshworks"]] = "https://fw0123456789abcdef.lambda-url.eu-west-1.on.aws/"
        outputs[vendor_secrets()["freshworks"][1]] = aws.describe_secret(SecretId=SECRET)["ARN"]
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))


def test_a_deployed_stacks_key_is_found_through_its_outputs(aws: Any) -> None:
    # FreshworksSecretArn, as template.yaml names the output
    assert vendor_secrets()["freshworks"] == ("FRESHWORKS_SECRET_ID", "FreshworksSecretArn")
    deploy(aws)
    status, out, err = run("--provider", "freshworks", "--stack-name", STACK)
    assert status == 0, err
    assert out == public_pem(PRIVATE_PEM)
    assert f"in {SECRET} (version " in err  # the secret's name, read back from Secrets Manager


def test_a_deployed_placeholder_suggests_plain_aws(aws: Any) -> None:
    deploy(aws)
    aws.put_secret_value(SecretId=SECRET, SecretString="REPLACE_ME with an RSA private key in PEM")
    status, out, err = run("--provider", "freshworks", "--stack-name", STACK)
    assert (status, out) == (3, "")
    assert f"`aws secretsmanager put-secret-value --secret-id {SECRET} --secret-string file://freshworks.pem`" in err


def test_a_stack_deployed_without_freshworks_names_the_switch(aws: Any) -> None:
    deploy(aws, with_freshworks=False)
    status, out, err = run("--make", "--provider", "freshworks", "--stack-name", STACK)
    assert (status, out) == (2, "")
    assert f"stack {STACK} in eu-west-1 has no freshworks: it was deployed with EnableFreshworks=false" in err
