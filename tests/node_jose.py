"""Verify what the bridge signs with an implementation that is not ours: node and panva's ``jose``.

The vendors' own examples are node (``jsonwebtoken``, ``jose``); PyJWT verifying PyJWT's tokens would pass a
mistake both make. ``jose`` comes with the local OpenID provider (``make oidc-provider``, a prerequisite of
``make test``); the token and key reach node on stdin, never on its command line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["JOSE_DIR", "JoseRefused", "verify_with_jose"]

JOSE_DIR = Path(__file__).resolve().parent.parent / "local" / "oidc_provider"

_SCRIPT = r"""
import { jwtVerify, importSPKI, decodeProtectedHeader } from "jose";
let input = "";
for await (const chunk of process.stdin) input += chunk;
const { token, key, algorithms } = JSON.parse(input);
try {
  const secret = algorithms[0].startsWith("HS") ? new TextEncoder().encode(key) : await importSPKI(key, algorithms[0]);
  const { payload } = await jwtVerify(token, secret, { algorithms, clockTolerance: 0 });
  process.stdout.write(JSON.stringify({ ok: true, payload, header: decodeProtectedHeader(token) }));
} catch (error) {
  process.stdout.write(JSON.stringify({ ok: false, code: error.code || error.name }));
}
"""


class JoseRefused(AssertionError):
    """jose refused the token; ``code`` is its error code (ERR_JWS_SIGNATURE_VERIFICATION_FAILED, ...)."""

    def __init__(self, code: str) -> None:
        super().__init__(f"jose refused the token: {code}")
        self.code = code


def verify_with_jose(token: str, key: str, *, algorithms: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, payload) as node's ``jose`` verifies them with exactly ``algorithms``; ``JoseRefused`` otherwise.

    ``key``: the shared secret for HS*, the public key's PEM (SPKI) for RS*. ``jose`` also checks ``exp``/``nbf``.
    """
    node = shutil.which("node")
    assert node is not None, "node is required (make test installs it with the local OpenID provider)"
    assert (JOSE_DIR / "node_modules" / "jose").is_dir(), "run `make oidc-provider` first (make test does)"
    request = json.dumps({"token": token, "key": key, "algorithms": algorithms})
    done = subprocess.run(  # a fixed script; the token and key go on stdin
        [node, "--input-type=module", "-e", _SCRIPT],
        input=request,
        capture_output=True,
        text=True,
        cwd=JOSE_DIR,
        timeout=30,
        check=True,
    )
    answer = json.loads(done.stdout)
    if not answer["ok"]:
        raise JoseRefused(answer["code"])
    return answer["header"], answer["payload"]
