"""Coverage-guided fuzz targets (atheris, libFuzzer) for the layer's checks of untrusted input.

- ``fuzz.login_token``: ``sso_bridge.login_token.verify_login_token``
- ``fuzz.urls``: ``sso_bridge.redirects.allowed_url``, ``sso_bridge.request.Query`` and ``request_url``
- ``fuzz.oidc_callback``: ``GET /oidc/callback`` (``sso_bridge.oidc``, ``oidc_state``, ``id_token``): its query
  and cookies, through a flow's routes

``python -m fuzz`` runs each for a while (``make fuzz``, ``FUZZ_SECONDS=`` per target); ``make test`` runs them
briefly (tests/unit/test_fuzz_smoke.py). One target alone takes libFuzzer's own options:
``python -m fuzz.urls -runs=10000 CORPUS_DIR fuzz/corpus/urls``; a crash file replays with
``python -m fuzz.urls CRASH_FILE``.
"""
