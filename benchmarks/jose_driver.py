"""The measuring end of the JOSE comparison (benchmarks/jose.py): one process of the runtime venv per measurement.

    python -P benchmarks/jose_driver.py PLAN.json RESULT.json      (PYTHONPATH: the libraries under test)

Standard library only at import; the library under test is imported after the clock starts. Modes:

- ``cold``: import the library, make the provider's key from its JWK, verify one RS256 token;
- ``warm``: the same once, then ``rounds`` rounds of ``calls`` verifications (the key made once, or, for
  ``joserfc-import``, imported from the JWK on every call, which sso_bridge.id_token avoids);
- ``import-jwt``: ``import jwt`` alone (the caller decides whether cryptography is importable).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

perf = time.perf_counter
Verify = Callable[[], dict[str, Any]]


def pyjwt(token: str, jwk: dict[str, Any], audience: str) -> Verify:
    """PyJWT: the key from a ``PyJWKSet`` (as from a JWKS document), ``jwt.decode`` (it checks exp, iat, aud)."""
    import jwt

    key = jwt.PyJWKSet.from_dict({"keys": [jwk]})[jwk["kid"]].key

    def verify() -> dict[str, Any]:
        return dict(jwt.decode(token, key, algorithms=["RS256"], audience=audience))

    return verify


def joserfc(token: str, jwk: dict[str, Any], audience: str, *, import_each_time: bool = False) -> Verify:
    """joserfc: ``jws.deserialize_compact`` with a key from ``JWKRegistry.import_key``, the payload parsed."""
    from joserfc import jws
    from joserfc.jwk import JWKRegistry

    key = JWKRegistry.import_key(jwk)

    def verify() -> dict[str, Any]:
        used = JWKRegistry.import_key(jwk) if import_each_time else key
        return dict(json.loads(jws.deserialize_compact(token, used, algorithms=["RS256"]).payload))

    return verify


def authlib(token: str, jwk: dict[str, Any], audience: str) -> Verify:
    """authlib.jose: ``JsonWebToken(["RS256"]).decode`` with a key from ``JsonWebKey.import_key`` (signature and
    parsing; its claim checks are a separate ``validate()``)."""
    from authlib.jose import JsonWebKey, JsonWebToken  # type: ignore[import-untyped,unused-ignore]

    key = JsonWebKey.import_key(jwk)
    decoder = JsonWebToken(["RS256"])

    def verify() -> dict[str, Any]:
        return dict(decoder.decode(token, key))

    return verify


LIBRARIES: dict[str, Callable[[str, dict[str, Any], str], Verify]] = {
    "pyjwt": pyjwt,
    "joserfc": joserfc,
    "joserfc-import": lambda token, jwk, audience: joserfc(token, jwk, audience, import_each_time=True),
    "authlib": authlib,
}


def peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    plan_path, result_path = sys.argv[1:3]
    with open(plan_path) as text:
        plan = json.load(text)
    result: dict[str, Any] = {}
    if plan["mode"] == "import-jwt":
        start = perf()
        import jwt  # noqa: F401 - the import is what is measured

        result["import_s"] = perf() - start
    else:
        token, jwk, audience = plan["token"], plan["jwk"], plan["audience"]
        start = perf()
        verify = LIBRARIES[plan["library"]](token, jwk, audience)
        imported = perf()
        claims = verify()
        done = perf()
        if claims.get("nonce") != plan["nonce"]:
            raise SystemExit(f"{plan['library']}: the token's claims did not come back: {claims!r}")
        result |= {"setup_s": imported - start, "total_s": done - start}  # setup: import + the key
        if plan["mode"] == "warm":
            rounds = []
            for _ in range(plan["rounds"]):
                begin = perf()
                for _ in range(plan["calls"]):
                    verify()
                rounds.append((perf() - begin) / plan["calls"])
            result["rounds_s"] = rounds
    result["modules"] = len(sys.modules)
    result["cryptography_loaded"] = "cryptography" in sys.modules
    result["max_rss_mb"] = peak_rss_mb()
    result["from"] = {
        name: getattr(sys.modules.get(name), "__file__", None) for name in ("jwt", "joserfc", "authlib", "cryptography")
    }
    with open(result_path, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
