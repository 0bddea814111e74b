"""What `sam build` produces loads in Lambda: each function imports with only its own folder and the
layer's ``python/`` ahead of the runtime's packages, and answers a request; the OIDC layer ships arm64
cryptography and joserfc outside ``python/``, and that layout, built for this machine, verifies RS256 and ES256.

Run after `make build` (`make test` does). The Lambda runtime's own packages (boto3 and what it needs) are
stood in for by links to this venv's copies, placed last on the path as /var/runtime is in Lambda.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from local.template import functions
from tests.helpers import EVENTS, ROOT

BUILD = ROOT / ".aws-sam" / "build"
LAYER = BUILD / "SigningLayer" / "python"
OIDC_SOURCE = ROOT / "layers" / "oidc"
OIDC_PACKAGES = BUILD / "OidcLayer" / "oidc-packages"  # /opt/oidc-packages in Lambda
EM_AARCH64 = 0xB7  # ELF e_machine of arm64 code

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


def test_every_module_in_the_signing_layer_has_unchecked_bytecode(built: Path) -> None:
    """/opt is read-only in Lambda: a .pyc that is missing or checked against its source's mtime (pip's own) is
    recompiled on every cold start, in memory. Each module, ours and the packages', is compiled once, at build."""
    sources = {path.with_suffix("") for path in LAYER.rglob("*.py")}
    pycs = list(LAYER.rglob("*.cpython-313.pyc"))
    assert {pyc.parent.parent / pyc.name.split(".", 1)[0] for pyc in pycs} >= sources
    flags = {str(pyc.relative_to(LAYER)): int.from_bytes(pyc.read_bytes()[4:8], "little") for pyc in pycs}
    assert {name for name, flag in flags.items() if flag != 0b01} == set()


TRANSLATIONS_PROBE = """
import json, sys
sys.path[:] = [sys.argv[1], *[p for p in sys.path if 'site-packages' not in p]]
from sso_bridge import i18n
catalogs = {language: i18n.translation(language) for language in i18n.LANGUAGES}
print(json.dumps({
    "i18n": i18n.__file__, "languages": i18n.LANGUAGES,
    "continue": {language: catalog.gettext("Continue") for language, catalog in catalogs.items()},
    "kinds": sorted({type(catalog).__name__ for catalog in catalogs.values()}),
}))
"""


def test_the_signing_layer_ships_each_language_compiled_and_reads_it(built: Path) -> None:
    """The pages' catalogs ship as .mo files only (compiled by the layer's Makefile), one per language, and the
    layer's own gettext reads them: a German reader sees German, not the English fallback."""
    locale = LAYER / "sso_bridge" / "locale"
    shipped = sorted(path.relative_to(locale).as_posix() for path in locale.rglob("*") if path.is_file())
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", TRANSLATIONS_PROBE, str(LAYER)],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    probe = json.loads(result.stdout)
    assert probe["i18n"].startswith(str(LAYER))
    assert shipped == sorted(f"{language}/LC_MESSAGES/sso_bridge.mo" for language in probe["languages"])
    assert probe["continue"] == {"en": "Continue", "de": "Weiter", "fr": "Continuer", "es": "Continuar"}
    assert probe["kinds"] == ["GNUTranslations"]


@pytest.mark.parametrize("spec", functions(), ids=lambda spec: spec.logical_id)
def test_function_imports_and_answers_as_in_lambda(built: Path, runtime: Path, spec: object, tmp_path: Path) -> None:
    logical_id = spec.logical_id  # type: ignore[attr-defined]
    function_dir = built / logical_id
    sample = sorted(EVENTS.glob(f"{Path(spec.code_uri).name}-*-httpapi.json"))[0]  # type: ignore[attr-defined]
    # The sample request without its query: no login token and none of the vendor's own parameters (checking
    # Discourse's signed sso needs its secret, and AWS is unreachable here, which is rightly a 503).
    request = json.loads(sample.read_text())
    request["rawQueryString"] = ""
    request.pop("queryStringParameters", None)
    event = tmp_path / sample.name
    event.write_text(json.dumps(request))
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
    # No login token: the user is sent to sign in (or a page), never a 5xx.
    assert probe["status"] < 500


# The OIDC layer.


def _pins() -> dict[str, str]:
    lines = (OIDC_SOURCE / "requirements.txt").read_text().splitlines()
    return dict(line.split("==") for line in (line.split("#", 1)[0].strip() for line in lines) if line)


def _elf_machine(path: Path) -> int | None:
    """The e_machine of an ELF file (what CPU its code is for), or None for anything else."""
    header = path.read_bytes()[:20]
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


def _layout(packages: Path) -> set[str]:
    """The files of an oidc-packages folder, compiled-module names without their platform."""
    return {
        re.sub(r"-(aarch64|x86_64)-linux-gnu", "-PLATFORM", str(path.relative_to(packages)))
        for path in packages.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and not path.name.endswith((".pyc", "RECORD"))
    }


def test_oidc_layer_ships_arm64_cryptography_and_joserfc_outside_the_path(built: Path) -> None:
    # Only oidc-packages/: a python/ folder would be on Lambda's sys.path, and PyJWT would import cryptography.
    assert [path.name for path in (built / "OidcLayer").iterdir()] == ["oidc-packages"]
    shipped = {path.name for path in OIDC_PACKAGES.iterdir()}
    assert {"cryptography", "cffi", "pycparser", "joserfc"} <= shipped
    assert {f"{name}-{version}.dist-info" for name, version in _pins().items()} <= shipped
    assert "bin" not in shipped
    machines = {str(path.relative_to(OIDC_PACKAGES)): _elf_machine(path) for path in OIDC_PACKAGES.rglob("*.so*")}
    assert "cryptography/hazmat/bindings/_rust.abi3.so" in machines
    assert any(name.startswith("_cffi_backend.cpython-313-aarch64") for name in machines)
    assert set(machines.values()) == {EM_AARCH64}, machines
    # Bytecode compiled at build time, never checked against the sources (PEP 552 flags 0b01): /opt is read-only.
    sources = {path.with_suffix("") for path in OIDC_PACKAGES.rglob("*.py")}
    pycs = list(OIDC_PACKAGES.rglob("*.cpython-313.pyc"))
    assert {pyc.parent.parent / pyc.name.split(".", 1)[0] for pyc in pycs} == sources
    assert {int.from_bytes(pyc.read_bytes()[4:8], "little") for pyc in pycs} == {0b01}


def _build_oidc_layer(*, artifacts_dir: str, platform_tag: str) -> subprocess.CompletedProcess[str]:
    """The OIDC layer's own Makefile, as sam build runs it; its python3.13 is this venv's."""
    env = {
        **os.environ,
        "ARTIFACTS_DIR": artifacts_dir,
        "OIDC_PLATFORM": platform_tag,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(OIDC_SOURCE), "build-OidcLayer"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="session")
def host_oidc_packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The OIDC layer built by its own Makefile for this machine's CPU (once per session): the same layout."""
    artifacts = tmp_path_factory.mktemp("oidc-layer-host")
    result = _build_oidc_layer(artifacts_dir=str(artifacts), platform_tag=f"manylinux2014_{platform.machine()}")
    assert result.returncode == 0, result.stderr[-3000:]
    return artifacts / "oidc-packages"


def test_the_host_build_has_the_layers_layout(built: Path, host_oidc_packages: Path) -> None:
    assert _layout(host_oidc_packages) == _layout(OIDC_PACKAGES)


def _keys() -> tuple[dict[str, str], dict[str, list[dict[str, str]]]]:
    """An RS256 and an ES256 token, signed here (PyJWT, this venv's cryptography), and the public key set."""
    now = int(time.time())
    claims = {"iss": "https://idp.example.com", "sub": "user-1", "aud": "bridge", "iat": now, "exp": now + 60}
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    tokens = {
        "RS256": jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": "rsa-1"}),
        "ES256": jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": "ec-1"}),
    }
    keys = [
        {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())), "kid": "rsa-1", "alg": "RS256"},
        {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key())), "kid": "ec-1", "alg": "ES256"},
    ]
    return tokens, {"keys": keys}


# Run with `python -I -S`: the standard library alone, then what Lambda and the layer code put on the path.
OIDC_PROBE = """
import json, sys
layer, oidc_packages, tokens, jwks = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
sys.path.insert(0, layer)  # /opt/python
import jwt
crypto_with_jwt = "cryptography" in sys.modules
sys.path.append(oidc_packages)  # what the layer code does on the first callback
import cryptography
from joserfc import jws
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet
keys = KeySet.import_key_set(jwks)
verified, tampered = {}, {}
for alg, token in tokens.items():
    verified[alg] = json.loads(jws.deserialize_compact(token, keys, algorithms=[alg]).payload)
    head, payload, signature = token.split(".")
    forged = ".".join([head, payload, ("A" if signature[0] != "A" else "B") + signature[1:]])
    try:
        jws.deserialize_compact(forged, keys, algorithms=[alg])
        tampered[alg] = "accepted"
    except BadSignatureError:
        tampered[alg] = "refused"
modules = {name: sys.modules[name].__file__ for name in ("jwt", "cryptography", "joserfc")}
print(json.dumps({"crypto_with_jwt": crypto_with_jwt, "verified": verified, "tampered": tampered, "files": modules}))
"""


def test_the_oidc_layout_verifies_rs256_and_es256_beside_the_signing_layer(
    built: Path, host_oidc_packages: Path
) -> None:
    tokens, jwks = _keys()
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            OIDC_PROBE,
            str(LAYER),
            str(host_oidc_packages),
            json.dumps(tokens),
            json.dumps(jwks),
        ],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert not probe["crypto_with_jwt"]
    assert probe["files"]["jwt"].startswith(str(LAYER))
    for module in ("cryptography", "joserfc"):
        assert probe["files"][module].startswith(str(host_oidc_packages)), module
    for alg in ("RS256", "ES256"):
        assert probe["verified"][alg]["sub"] == "user-1", alg
        assert probe["tampered"][alg] == "refused", alg


JWT_ONLY_PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import jwt, jwt.algorithms
compiled = sorted(name for name in sys.modules if name.split(".")[0] in ("cryptography", "_cffi_backend", "cffi"))
print(json.dumps({"jwt": jwt.__file__, "has_crypto": jwt.algorithms.has_crypto, "cryptography": compiled}))
"""


def test_pyjwt_from_the_signing_layer_alone_imports_no_cryptography(built: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", JWT_ONLY_PROBE, str(LAYER)],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    probe = json.loads(result.stdout)
    assert probe["jwt"].startswith(str(LAYER))
    assert probe == {**probe, "has_crypto": False, "cryptography": []}


def test_the_makefile_passes_platform_and_folder_to_pip_as_data(tmp_path: Path) -> None:
    """Hostile OIDC_PLATFORM and ARTIFACTS_DIR values reach pip as arguments: neither make nor the shell runs them."""
    marker = tmp_path / "ran"
    hostile = f"$(shell touch {marker}-make)`touch {marker}-backtick`$$(touch {marker}-dollar)"
    result = _build_oidc_layer(artifacts_dir=str(tmp_path / f"out{hostile}"), platform_tag=hostile)
    assert result.returncode != 0  # pip finds no wheel for that platform
    assert "No matching distribution" in result.stderr
    assert not list(tmp_path.glob("ran*"))
