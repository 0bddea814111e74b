"""`make rotate-login-key`: a new random key becomes AWSCURRENT; routine keeps the old one as AWSPREVIOUS,
an emergency leaves no previous key. The key is never printed unless asked.

Deployed stacks are moto CloudFormation stacks as in test_target.py. The local stack is a state file whose
AWS endpoint is the standard Secrets Manager URL, which moto intercepts as it does without an endpoint.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import boto3
import jwt
import pytest
from botocore.exceptions import ClientError

from local import mint_login_token
from local.demo_platform import LOGIN_PATH, DemoPlatform, secret_key
from local.server import Request
from local.state import write_state
from ops import rotate_key
from ops.rotate_key import Rotation, Timing, new_key, report, rotate, timing
from ops.target import Target, TargetError
from tests.helpers import LOGIN_TOKEN_KEY, SECRET_IDS, LambdaContext, load_event, make_login_token
from tests.unit.test_target import STACK, create_bridge_stack, local_state

SECRET = SECRET_IDS["login"]
MOTO_ENDPOINT = "https://secretsmanager.eu-west-1.amazonaws.com"  # moto's mock answers it like AWS
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]{43,}$")


@pytest.fixture
def stack(aws: Any) -> Any:
    create_bridge_stack()
    return aws


@pytest.fixture
def local_stack_file(aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A running local stack (this process's pid) whose emulated Secrets Manager is moto's mock."""
    path = tmp_path / "local-stack.json"
    write_state(local_state(aws_endpoint=MOTO_ENDPOINT, secret_ids={"LOGIN_TOKEN_SECRET_ID": SECRET}), path)
    monkeypatch.setenv("LOCAL_STACK_FILE", str(path))
    return path


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = rotate_key.main(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def stage_value(client: Any, stage: str) -> str:
    value: str = client.get_secret_value(SecretId=SECRET, VersionStage=stage)["SecretString"]
    return value


def labels(client: Any) -> dict[str, list[str]]:
    return {v: list(s) for v, s in client.describe_secret(SecretId=SECRET)["VersionIdsToStages"].items() if s}


def holder(client: Any, stage: str) -> str:
    return next(version for version, stages in labels(client).items() if stage in stages)


# --- routine --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["deployed", "local"])
def test_routine_rotation_makes_a_new_key_current_and_keeps_the_old_one_previous(
    mode: str, request: pytest.FixtureRequest
) -> None:
    # Given the bridge, deployed (found through CloudFormation) or local (found through its state file)
    request.getfixturevalue("stack" if mode == "deployed" else "local_stack_file")
    client = boto3.client("secretsmanager")
    old_version = holder(client, "AWSCURRENT")

    # When the operator rotates the key
    status, out, err = run("--stack-name", STACK) if mode == "deployed" else run("--local")

    # Then a new random key is current and the old one is the previous version
    assert (status, err) == (0, "")
    new = stage_value(client, "AWSCURRENT")
    assert new != LOGIN_TOKEN_KEY
    assert _BASE64URL.fullmatch(new)
    assert len(base64.urlsafe_b64decode(new + "=")) >= 32
    assert stage_value(client, "AWSPREVIOUS") == LOGIN_TOKEN_KEY
    assert holder(client, "AWSPREVIOUS") == old_version
    # And the operator reads what happened (secret name, version ids), never a key
    new_version = holder(client, "AWSCURRENT")
    assert f"secret {SECRET}, new version {new_version}" in out
    assert f"the old key (version {old_version}, now AWSPREVIOUS) stays valid" in out
    assert "next: give the platform the new key" in out
    assert new not in out
    assert LOGIN_TOKEN_KEY not in out
    where = f"stack {STACK} in eu-west-1" if mode == "deployed" else "the local stack at http://localhost:3000"
    assert out.startswith(f"rotated the login-token key of {where}: ")
    cli = "aws" if mode == "deployed" else f"aws --endpoint-url {MOTO_ENDPOINT}"
    assert f"`{cli} secretsmanager get-secret-value --secret-id {SECRET} --query SecretString --output text`" in out


def test_each_rotation_draws_a_new_random_key(stack: Any) -> None:
    assert run("--stack-name", STACK)[0] == 0
    first = stage_value(stack, "AWSCURRENT")
    assert run("--stack-name", STACK)[0] == 0
    second = stage_value(stack, "AWSCURRENT")
    assert len({LOGIN_TOKEN_KEY, first, second}) == 3
    # A key from two rotations ago has no label left: the bridge refuses it
    assert stage_value(stack, "AWSPREVIOUS") == first
    keys = {new_key() for _ in range(200)}
    assert len(keys) == 200
    assert all(len(key) >= 43 and _BASE64URL.fullmatch(key) for key in keys)


# --- emergency ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["deployed", "local"])
def test_emergency_rotation_leaves_no_previous_key(mode: str, request: pytest.FixtureRequest) -> None:
    request.getfixturevalue("stack" if mode == "deployed" else "local_stack_file")
    client = boto3.client("secretsmanager")
    old_version = holder(client, "AWSCURRENT")

    status, out, err = run("--emergency", *(["--stack-name", STACK] if mode == "deployed" else ["--local"]))

    assert (status, err) == (0, "")
    new = stage_value(client, "AWSCURRENT")
    assert new != LOGIN_TOKEN_KEY
    assert not any("AWSPREVIOUS" in stages for stages in labels(client).values())
    with pytest.raises(ClientError) as caught:
        client.get_secret_value(SecretId=SECRET, VersionStage="AWSPREVIOUS")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # And the operator is told the old key is refused, when, and that the platform needs the new key now
    assert "(emergency)" in out.splitlines()[0]
    assert f"no previous key: the old key (version {old_version}) is no longer AWSPREVIOUS" in out
    assert "once the functions' caches expire" in out
    assert "(SECRETS_MAX_AGE, 300 s by default)" in out
    assert "give the platform the new key NOW" in out
    assert new not in out
    assert LOGIN_TOKEN_KEY not in out


def test_the_bridge_takes_both_keys_after_a_routine_rotation_and_only_the_new_after_an_emergency(
    stack: Any, load_function: Callable[..., ModuleType]
) -> None:
    clickfunnels = load_function("clickfunnels", SECRETS_MAX_AGE="0")  # every request reads the secret afresh

    def status(key: str) -> int:
        event = load_event("clickfunnels-sso-httpapi", query=f"login_token={make_login_token(key=key)}")
        return int(clickfunnels.lambda_handler(event, LambdaContext())["statusCode"])

    assert run("--stack-name", STACK)[0] == 0
    routine = stage_value(stack, "AWSCURRENT")
    assert (status(LOGIN_TOKEN_KEY), status(routine)) == (302, 302)

    assert run("--emergency", "--stack-name", STACK)[0] == 0
    emergency = stage_value(stack, "AWSCURRENT")
    assert (status(routine), status(LOGIN_TOKEN_KEY), status(emergency)) == (401, 401, 302)


# --- the key, shown only when asked ---------------------------------------------------------------------------


def test_show_key_prints_the_key_alone_on_stdout_and_the_report_on_stderr(stack: Any) -> None:
    status, out, err = run("--show-key", "--emergency", "--stack-name", STACK)
    assert status == 0
    assert out == stage_value(stack, "AWSCURRENT") + "\n"
    assert out.strip() not in err
    assert "rotated the login-token key" in err
    assert "the new key is on stdout, once" in err
    assert "get-secret-value" not in err


def test_the_key_appears_nowhere_without_show_key(stack: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert rotate_key.main(["--stack-name", STACK]) == 0
    captured = capsys.readouterr()
    assert stage_value(stack, "AWSCURRENT") not in captured.out + captured.err


# --- refusals -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["--emergancy"], ["now"], ["--show-key=yes"], ["--stack-name", "my_stack"], ["--stack-name", "$(touch x)"]],
)
def test_bad_arguments_are_one_line_and_change_nothing(
    aws: Any, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        rotate_key.main(argv)
    captured = capsys.readouterr()
    assert caught.value.code == 2
    assert captured.out == ""
    assert captured.err.startswith("python -m ops.rotate_key: error: ")
    assert captured.err.count("\n") == 1
    assert stage_value(aws, "AWSCURRENT") == LOGIN_TOKEN_KEY


def test_a_stack_without_the_secret_output_exits_3_with_one_line(aws: Any) -> None:
    create_bridge_stack(drop_outputs=("LoginTokenSecretArn",))
    status, out, err = run("--stack-name", STACK)
    assert (status, out) == (3, "")
    assert err == (
        "python -m ops.rotate_key: error: stack bridge-under-test in eu-west-1 has no output LoginTokenSecretArn: "
        "deploy the current template.yaml\n"
    )


def test_an_unknown_stack_exits_3(aws: Any) -> None:
    status, out, err = run("--stack-name", "no-such-stack")
    assert (status, out) == (3, "")
    assert err == (
        "python -m ops.rotate_key: error: stack no-such-stack not found in eu-west-1: "
        "pass --stack-name (or set STACK_NAME)\n"
    )


def test_a_missing_secret_exits_3_saying_nothing_changed(stack: Any) -> None:
    stack.delete_secret(SecretId=SECRET, ForceDeleteWithoutRecovery=True)
    status, out, err = run("--stack-name", STACK)
    assert (status, out) == (3, "")
    assert err.startswith(
        f"python -m ops.rotate_key: error: cannot read the login-token secret of stack {STACK} in eu-west-1, "
        "nothing changed: ResourceNotFoundException"
    )
    assert err.count("\n") == 1


def test_without_a_local_stack_it_says_how_to_start_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_STACK_FILE", str(tmp_path / "none.json"))
    status, out, err = run("--local")
    assert (status, out) == (3, "")
    assert "no local stack is running" in err
    assert "make run" in err


def test_an_emergency_that_cannot_drop_the_old_key_says_so_and_how_to_finish(stack: Any) -> None:
    # Given an operator allowed to put a value but not to move labels
    client = boto3.client("secretsmanager")
    old_version = holder(client, "AWSCURRENT")

    def denied(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "Update")

    client.update_secret_version_stage = denied  # type: ignore[method-assign]

    # When the emergency rotation runs
    with pytest.raises(TargetError) as caught:
        rotate(client, SECRET, emergency=True, where="stack x")

    # Then the error says the new key is in, the old one still works, and the exact command to finish
    message = str(caught.value)
    new_version = holder(client, "AWSCURRENT")
    assert "\n" not in message
    assert "AccessDeniedException" in message
    assert f"the new key is current (version {new_version}) but the OLD KEY IS STILL ACCEPTED" in message
    assert (
        f"`aws secretsmanager update-secret-version-stage --secret-id {SECRET} --version-stage AWSPREVIOUS "
        f"--remove-from-version-id {old_version}`"
    ) in message
    assert stage_value(client, "AWSCURRENT") not in message


# --- the bridge's clocks ----------------------------------------------------------------------------------------


def _target(settings: dict[str, str]) -> Target:
    return Target(
        where="the local stack at http://localhost:3000",
        local=True,
        session=boto3.session.Session(region_name="eu-west-1"),
        endpoint_url=None,
        function_urls={},
        resources={},
        settings=settings,
    )


def test_the_clocks_come_from_the_target_when_it_says() -> None:
    clock = timing(_target({"SECRETS_MAX_AGE": "60", "LOGIN_TOKEN_PREVIOUS_KEY_GRACE": "3600"}))
    assert clock == Timing(max_age=60, max_age_known=True, grace=3600)
    # Else the layer's defaults: 300 s of cache, and a grace as long as the longest email link
    assert timing(_target({})) == Timing(max_age=300, max_age_known=False, grace=7 * 86400)
    assert timing(_target({"LINK_TOKEN_MAX_TTL": "86400", "LOGIN_TOKEN_PREVIOUS_KEY_GRACE": ""})).grace == 86400
    assert timing(_target({"LOGIN_TOKEN_PREVIOUS_KEY_GRACE": str(90 * 86400)})).grace == 30 * 86400


def test_a_deployed_stack_says_its_grace_through_its_parameter(aws: Any) -> None:
    create_bridge_stack(name="with-grace", parameters={"LoginTokenPreviousKeyGrace": "7200"})
    status, out, _ = run("--stack-name", "with-grace")
    assert status == 0
    assert "(LOGIN_TOKEN_PREVIOUS_KEY_GRACE 7200 s)" in out


def test_a_bad_setting_stops_before_anything_changes() -> None:
    with pytest.raises(TargetError, match=r"SECRETS_MAX_AGE is not a number of seconds"):
        timing(_target({"SECRETS_MAX_AGE": "5m"}))


def test_the_report_says_until_when_the_old_key_works() -> None:
    rotation = Rotation("sso-bridge/login-token", "v2", 1_800_000_000, "v1", "v1", emergency=False)
    lines = report(rotation, Timing(max_age=60, max_age_known=True, grace=86400), where="stack s in eu-west-1")
    text = "\n".join(lines)
    assert "(AWSCURRENT since 2027-01-15T08:00:00Z)" in lines[0]
    assert "the old key (version v1, now AWSPREVIOUS) stays valid until 2027-01-16T08:00:00Z" in text
    assert "(LOGIN_TOKEN_PREVIOUS_KEY_GRACE 86400 s)" in text
    assert "the functions accept the new key at once" in text
    assert "use it first by 2027-01-15T08:01:00Z (SECRETS_MAX_AGE 60 s)" in text
    assert "it can sign with it now, and must before 2027-01-16T08:00:00Z" in text
    assert "before 2027-01-16T08:00:00Z" in text
    assert len(lines) <= 6
    none = "\n".join(report(rotation, Timing(300, False, 0), where="stack s in eu-west-1"))
    assert "is refused once the functions' caches expire, by 2027-01-15T08:05:00Z" in none
    assert "(LOGIN_TOKEN_PREVIOUS_KEY_GRACE is 0; SECRETS_MAX_AGE, 300 s by default)" in none


# --- the local stack's platforms follow the rotation ---------------------------------------------------------


def test_make_login_token_signs_with_the_running_stacks_current_key_not_the_seed(
    local_stack_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a shell that exported the seed key (as the banner suggests) and a rotation since
    monkeypatch.setenv("LOGIN_TOKEN_SECRET", LOGIN_TOKEN_KEY)
    assert run("--local")[0] == 0
    new = stage_value(boto3.client("secretsmanager"), "AWSCURRENT")

    # When make login-token runs
    assert mint_login_token.main(["--email", "jane@example.com", "--aud", "clickfunnels"]) == 0

    # Then the token is signed with the key the stack verifies with now
    token = capsys.readouterr().out.strip()
    assert jwt.decode(token, new, algorithms=["HS256"], audience="clickfunnels")["email"] == "jane@example.com"


def test_without_a_running_stack_make_login_token_still_uses_the_seed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOCAL_STACK_FILE", str(tmp_path / "none.json"))
    monkeypatch.setenv("LOGIN_TOKEN_SECRET", LOGIN_TOKEN_KEY)
    assert mint_login_token.main(["--email", "jane@example.com", "--aud", "clickfunnels"]) == 0
    token = capsys.readouterr().out.strip()
    assert jwt.decode(token, LOGIN_TOKEN_KEY, algorithms=["HS256"], audience="clickfunnels")


def test_a_demo_platform_following_the_secret_signs_with_the_key_in_force(aws: Any) -> None:
    platform = DemoPlatform(
        key=secret_key(SECRET), audiences=["clickfunnels"], ports={3000}, home="http://localhost:3000/"
    )
    return_to = quote("http://localhost:3000/clickfunnels/sso", safe="")

    def signed_with(key: str) -> bool:
        body = urlencode({"email": "jane@example.com"}).encode()
        request = Request("POST", f"{LOGIN_PATH}?return_to={return_to}", [], body, "127.0.0.1", "HTTP/1.1", 3000)
        reply = platform(request)
        assert reply is not None
        [token] = parse_qs(urlsplit(dict(reply.headers)["Location"]).query)["login_token"]
        try:
            jwt.decode(token, key, algorithms=["HS256"], audience="clickfunnels")
        except jwt.InvalidSignatureError:
            return False
        return True

    assert signed_with(LOGIN_TOKEN_KEY)
    rotate(aws, SECRET)  # make rotate-login-key LOCAL=1
    assert signed_with(stage_value(aws, "AWSCURRENT"))
    assert not signed_with(LOGIN_TOKEN_KEY)
