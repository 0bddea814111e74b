"""Which library checks the ID token's RS256 signature: PyJWT, joserfc or authlib.jose, measured as Lambda runs them.

Each measurement is a fresh process of the runtime venv (.venv/bench-runtime: Python 3.13 and boto3 alone) with
``PYTHONPATH`` holding only what it needs, each compiled once as the layers ship it (``.pyc`` files, none written at
run time):

- cryptography, cffi and joserfc: the OIDC layer's packages built for this machine (``.venv/bench-oidc-packages``,
  ``lambda_env.oidc_packages``);
- PyJWT: the built signing layer's (``.aws-sam/build/SigningLayer/python``);
- authlib: pinned here (``AUTHLIB_VERSION``), installed without its dependencies into a throwaway folder
  (``.bench/jose/``; its cryptography and joserfc are the OIDC layer's).

Measured: cold (import, the key from the provider's JWK, the first verification of a token: median of ``runs``
processes), warm (one verification with the key made once: median of ``rounds`` rounds; and joserfc importing the
key on every call, which sso_bridge.id_token avoids by keeping parsed keys), and ``import jwt`` with and without
cryptography importable (PyJWT imports it at its own import whenever it can: the reason the OIDC layer keeps it off
``sys.path``).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.lambda_env import BENCH_DIR, BUILD, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, dist_versions, oidc_packages
from benchmarks.oidc_provider import StandInProvider

__all__ = ["AUTHLIB_VERSION", "LIBRARIES", "jose_comparison"]

AUTHLIB_VERSION = "1.9.6"
DRIVER = Path(__file__).resolve().parent / "jose_driver.py"
LIBRARIES = {
    "pyjwt": "PyJWT (PyJWKSet + jwt.decode)",
    "joserfc": "joserfc (jws.deserialize_compact)",
    "authlib": "authlib.jose (JsonWebToken.decode)",
}


def install_authlib(runtime_python: Path, target: Path) -> Path:
    """authlib, without its dependencies, compiled like the layers (once; then cached)."""
    if not list(target.glob("authlib-*.dist-info")):
        pip = [str(runtime_python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps"]
        subprocess.run(
            [*pip, "--only-binary=:all:", "--target", str(target), f"authlib=={AUTHLIB_VERSION}"], check=True
        )
        subprocess.run(
            [str(runtime_python), "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
             str(target)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    return target


def _run(runtime_python: Path, plan: dict[str, Any], path: list[Path], tmp: Path) -> dict[str, Any]:
    plan_path, result_path = tmp / "plan.json", tmp / "result.json"
    plan_path.write_text(json.dumps(plan))
    result_path.unlink(missing_ok=True)
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONPATH": ":".join(str(p) for p in path),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONWARNINGS": "ignore",  # authlib.jose's deprecation notice (it points at joserfc)
    }
    done = subprocess.run(
        [str(runtime_python), "-P", str(DRIVER), str(plan_path), str(result_path)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if done.returncode != 0 or not result_path.exists():
        raise RuntimeError(
            f"jose {plan['mode']} {plan.get('library', '')}: exit {done.returncode}\n{done.stderr[-2000:]}"
        )
    result: dict[str, Any] = json.loads(result_path.read_text())
    return result


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def jose_comparison(
    runtime_python: Path, *, runs: int = 5, rounds: int = 7, calls: int = 300, build: Path = BUILD
) -> dict[str, Any]:
    """Cold and warm RS256 verification per library, and ``import jwt`` with and without cryptography."""
    signing = build / "SigningLayer" / "python"
    if not (signing / "jwt").is_dir():
        raise RuntimeError(f"no PyJWT in {signing}: run `make build`")
    packages, versions = oidc_packages(runtime_python)
    authlib = install_authlib(runtime_python, BENCH_DIR / "jose" / f"authlib-{AUTHLIB_VERSION}")
    path = [packages, signing, authlib]
    provider = StandInProvider(OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, issuer="https://idp.example.com")
    nonce = "bench-nonce"
    common = {"token": provider.id_token(nonce), "jwk": provider.jwk, "audience": OIDC_CLIENT_ID, "nonce": nonce}
    cold: dict[str, list[dict[str, Any]]] = {name: [] for name in LIBRARIES}
    imports: dict[str, list[dict[str, Any]]] = {"without": [], "with": []}
    (BENCH_DIR / "tmp").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="jose-", dir=BENCH_DIR / "tmp") as tmp:
        for _ in range(runs):  # alternated, so drift on the machine touches every library alike
            for name in LIBRARIES:
                cold[name].append(_run(runtime_python, {"mode": "cold", "library": name, **common}, path, Path(tmp)))
            imports["without"].append(_run(runtime_python, {"mode": "import-jwt"}, [signing], Path(tmp)))
            imports["with"].append(_run(runtime_python, {"mode": "import-jwt"}, [signing, packages], Path(tmp)))
        warm = {
            name: _run(
                runtime_python,
                {"mode": "warm", "library": name, "rounds": rounds, "calls": calls, **common},
                path,
                Path(tmp),
            )
            for name in [*LIBRARIES, "joserfc-import"]
        }
    rows = []
    for name, label in LIBRARIES.items():
        first = cold[name][0]
        rows.append(
            {
                "library": name,
                "label": label,
                "cold_ms": median([r["total_s"] for r in cold[name]]) * 1e3,
                "cold_setup_ms": median([r["setup_s"] for r in cold[name]]) * 1e3,
                "cold_runs_ms": [r["total_s"] * 1e3 for r in cold[name]],
                "modules": int(median([r["modules"] for r in cold[name]])),
                "rss_mb": median([r["max_rss_mb"] for r in cold[name]]),
                "warm_us": median(warm[name]["rounds_s"]) * 1e6,
                "warm_rounds_us": [t * 1e6 for t in warm[name]["rounds_s"]],
                "from": first["from"],
            }
        )
    import_rows = {
        kind: {
            "ms": median([r["import_s"] for r in runs_]) * 1e3,
            "modules": int(median([r["modules"] for r in runs_])),
            "cryptography_loaded": any(r["cryptography_loaded"] for r in runs_),
        }
        for kind, runs_ in imports.items()
    }
    return {
        "runs": runs,
        "rounds": rounds,
        "calls_per_round": calls,
        "versions": {**versions, "pyjwt": dist_versions(signing).get("pyjwt", "?"), "authlib": AUTHLIB_VERSION},
        "libraries": rows,
        "joserfc_import_key_each_call_us": median(warm["joserfc-import"]["rounds_s"]) * 1e6,
        "import_jwt": import_rows,
    }
