"""What `sam build` produces loads in Lambda: each function imports with only its own folder and the
layer's ``python/`` ahead of the runtime's packages, and answers a request.

Run after `make build` (`make test` does). The Lambda runtime's own packages (boto3 and what it needs) are
stood in for by links to this venv's copies, placed last on the path as /var/runtime is in Lambda.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from local.template import functions
from tests.helpers import EVENTS, ROOT

BUILD = ROOT / ".aws-sam" / "build"
LAYER = BUILD / "SigningLayer" / "python"

RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py")

pytestmark = pytest.mark.build

PROBE = """
import json, sys
function_dir, layer, runtime, event_file = sys.argv[1:5]
sys.path[:] = [function_dir, layer, *[p for p in sys.path if 'site-packages' not in p], runtime]
import app, jwt, aws_lambda_powertools, sso_bridge
class Context:
    function_name = "probe"; memory_limit_in_mb = 256; aws_request_id = "probe"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:probe"
response = app.lambda_handler(json.load(open(event_file)), Context())
print(json.dumps({
    "app": app.__file__, "jwt": jwt.__file__, "powertools": aws_lambda_powertools.__file__,
    "sso_bridge": sso_bridge.__file__, "status": response["statusCode"],
    "cryptography": "cryptography" in sys.modules,
}))
"""


@pytest.fixture(scope="module")
def built() -> Path:
    if not (BUILD / "template.yaml").exists():
        if os.environ.get("CI"):
            pytest.fail("no .aws-sam/build: `make test` runs `make build` first")
        pytest.skip("run `make build` first")
    return BUILD


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with just what the python3.13 Lambda runtime provides besides the standard library."""
    folder = tmp_path_factory.mktemp("var-runtime")
    site = Path(sysconfig.get_paths()["purelib"])
    for name in RUNTIME_PACKAGES:
        (folder / name).symlink_to(site / name)
    return folder


def test_layer_ships_no_second_botocore_or_cryptography(built: Path) -> None:
    shipped = {path.name for path in LAYER.iterdir()}
    assert {"sso_bridge", "jwt", "aws_lambda_powertools"} <= shipped
    assert not shipped & {"botocore", "boto3", "cryptography"}


@pytest.mark.parametrize("spec", functions(), ids=lambda spec: spec.logical_id)
def test_function_imports_and_answers_as_in_lambda(built: Path, runtime: Path, spec: object) -> None:
    logical_id = spec.logical_id  # type: ignore[attr-defined]
    function_dir = built / logical_id
    event = next(EVENTS.glob(f"{Path(spec.code_uri).name}-*-httpapi.json"))  # type: ignore[attr-defined]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    result = subprocess.run(
        [sys.executable, "-S", "-c", PROBE, str(function_dir), str(LAYER), str(runtime), str(event)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["app"].startswith(str(function_dir))
    for module in ("jwt", "powertools", "sso_bridge"):
        assert probe[module].startswith(str(LAYER)), module
    assert not probe["cryptography"]
    # No login token in the sample event: the user is sent to sign in (or a page), never a 5xx.
    assert probe["status"] < 500
