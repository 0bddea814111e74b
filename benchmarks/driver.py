"""The measuring end of `make bench`: runs inside the Lambda-shaped venv, one process per measurement.

    python -P benchmarks/driver.py PLAN.json RESULT.json      (cwd: the task root; environment: Lambda's)

Standard library only at import: ``jwt`` comes from the built layer and ``boto3`` from the runtime venv, as in
Lambda, and nothing of the project is imported but the handler, by the name in ``_HANDLER``. Modes:

- ``warm``: import the handler, warm it up, then ``rounds`` rounds of ``calls`` handler calls, each round
  followed by as many calls of the floor (``Floor``: PyJWT decode, the vendor's token of the same claims, plus the
  flow's DynamoDB write through boto3 to the same endpoint). Every call gets a fresh login token (a link needs a
  fresh jti: it can be spent once), a fresh request id and trace header, and for Discourse a freshly signed
  ``sso``/``sig`` (``vendor_request``), all made before its timer starts.
- ``cold-handler``: from a fresh interpreter, import the handler and serve one request (events made by the bench).
- ``cold-floor``: from a fresh interpreter, only the unavoidable: import jwt and boto3 (and, for an RS256 vendor,
  cryptography from the OIDC layer's folder), make the clients, fetch the two secrets, decode, sign, and write
  where the flow writes.

OpenID Connect (``plan["oidc"]``, a stand-in provider on localhost, benchmarks/oidc_provider.py):

- ``start``: a signed-out request to the sign-in route (no login token), answered 302 to the provider; its floor
  is the vendor sign-in's (PyJWT decode + encode).
- ``callback``: each handler call is prepared, untimed, as a browser would: the sign-in route answers the redirect
  to the provider and the state cookie, the stand-in's authorization endpoint answers the redirect back with a
  fresh code (it keeps the nonce the bridge sent), and the timed call is ``/oidc/callback`` with that query and
  cookie. Its floor (``CallbackFloor``) is what any callback must do: HS256-decode the state cookie, record the
  state as used (the same conditional put), redeem the code at the token endpoint (a fresh connection, as the
  bridge's), verify the ID token's RS256 signature with joserfc (key imported once) and HS256-encode the login
  token. The cold floor adds what a fresh container needs first: importing boto3, jwt and joserfc (so
  cryptography), the two secrets (login key, client secret), discovery and the key set.

Handler output (logs, metrics) goes to stdout and stderr as in Lambda; the result goes to RESULT.json. What the
OpenID parts need beyond this module's imports is imported where it is used, so that a cold start finds no more
preloaded than before.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import os
import sys
import time
from typing import Any

perf = time.perf_counter


class Context:
    """The attributes of Lambda's context object."""

    def __init__(self, function: dict[str, Any], request_id: str) -> None:
        self.function_name = function["name"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = function["arn"]
        self.memory_limit_in_mb = int(function["memory"])
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + int(function["timeout"])

    def get_remaining_time_in_millis(self) -> int:
        return int(max(self._deadline - time.monotonic(), 0) * 1000)


def request_id() -> str:
    raw = os.urandom(16).hex()
    return f"{raw[:8]}-{raw[8:12]}-4{raw[13:16]}-8{raw[17:20]}-{raw[20:]}"


def trace_header(sampled: bool) -> str:
    root = f"1-{int(time.time()):08x}-{os.urandom(12).hex()}"
    return f"Root={root};Parent={os.urandom(8).hex()};Sampled={int(sampled)};Lineage=1:{os.urandom(4).hex()}:0"


def load_handler(name: str) -> Any:
    module_name, _, function = name.replace("/", ".").rpartition(".")
    return getattr(importlib.import_module(module_name), function)


# --- tokens and events ----------------------------------------------------------------------------------------


def login_token(jwt: Any, login: dict[str, Any], jti: str | None = None) -> str:
    now = int(time.time())
    claims = {"email": login["email"], "name": login["name"], "aud": login["aud"], "iat": now}
    claims["exp"] = now + int(login["lifetime"])
    # A link's single-use id; platforms send one with interactive tokens too.
    claims["jti"] = jti or os.urandom(16).hex()
    if login.get("use"):
        claims["use"] = login["use"]
    if login.get("campaign"):
        claims["campaign"] = login["campaign"]
    return str(jwt.encode(claims, login["key"], algorithm="HS256"))


def event_with(plan: dict[str, Any], token: str, field: str | None = None, query: str | None = None) -> dict[str, Any]:
    """The plan's event with ``token`` (and ``query``, the vendor's parameters, instead of the plan's); for a link,
    with its page's cookie and the form's ``field`` (the POST)."""
    event: dict[str, Any] = json.loads(plan["event_json"])
    query = plan["query"] if query is None else query
    event["rawQueryString"] = f"{query}&login_token={token}" if query else f"login_token={token}"
    event.pop("queryStringParameters", None)
    event["requestContext"]["requestId"] = request_id()
    form = plan.get("form")
    if form is not None and field is not None:
        event["cookies"] = [f"{form['cookie']}={form['nonce']}"]
        event["body"] = f"{form['field']}={field}"
    return event


def form_field(plan: dict[str, Any], jti: str) -> str | None:
    """The hidden field the link's page gives this browser (the layer's own function: the handler loaded it)."""
    form = plan.get("form")
    if form is None:
        return None
    field_value = importlib.import_module("sso_bridge.link_form").field_value
    return str(field_value(plan["login"]["key"], jti=jti, nonce=form["nonce"]))


def connect_sign(payload: str, secret: str) -> str:
    """DiscourseConnect's signature: the hex HMAC-SHA256 of the Base64 text (never of what it decodes to)."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def vendor_request(plan: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The vendor's parameters for one call: the query the handler gets, and what the floor is given.

    Most vendors' are the sample event's (parsed by the bench: ``plan["floor"]["request"]``). Discourse signs its
    request: a fresh nonce, its payload Base64-encoded and signed with the plan's key (the one the bench seeded),
    as Discourse's ``/session/sso`` would; the floor gets ``sso`` and ``sig`` to check and decode itself."""
    floor = plan["floor"]
    connect = floor.get("connect")
    if connect is None:
        return plan["query"], floor["request"]
    import base64
    from urllib.parse import urlencode

    payload = urlencode({"nonce": os.urandom(16).hex(), "return_sso_url": connect["return_sso_url"]})
    sso = base64.b64encode(payload.encode()).decode()
    request = {"sso": sso, "sig": connect_sign(sso, floor["vendor_key"])}
    return urlencode(request), request


def vendor_claims(
    spec: list[list[Any]], login: dict[str, Any], request: dict[str, str], now: int, jti: str | None
) -> dict[str, Any]:
    """The vendor's claims from the plan's resolved ``flows.Signs`` (``[claim, kind, argument]``), in its order."""
    claims: dict[str, Any] = {}
    for name, kind, argument in spec:
        if kind == "login":
            value = next((login[claim] for claim in argument if login.get(claim)), None)
            if value is not None:
                claims[name] = value
        elif kind == "now":
            claims[name] = now + argument
        elif kind == "value":
            claims[name] = argument
        elif kind == "request":
            claims[name] = request[argument]
        elif kind == "jti":
            claims[name] = jti
        elif kind == "format":
            claims[name] = argument.format_map(login)
        else:
            raise ValueError(f"unknown claim source {kind!r}")
    return claims


def b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Floor:
    """What any implementation of a sign-in must do for the plan's flow (benchmarks/flows.py), and no more."""

    def __init__(self, plan: dict[str, Any], jwt: Any, dynamodb: Any) -> None:
        self.jwt = jwt
        self.floor = plan["floor"]
        self.dynamodb = dynamodb
        self.alg = self.floor["alg"]
        self.claims: list[list[Any]] = self.floor["claims"]
        self.headers = dict(self.floor.get("headers") or {}) or None
        self.draws_jti = any(kind == "jti" for _, kind, _ in self.claims)
        self.write_times: list[float] = []  # the write alone, inside each floor call
        self.io_times: list[float] = []  # every round trip to an emulator inside each floor call (here: the write)
        self._rsa: tuple[str, Any] | None = None  # (PEM, the parsed key): parsed once, as a handler must
        if self.alg == "RS256":
            # cryptography from the OIDC layer's folder (appended, as the layer's loader does); PyJWT is imported
            # already, so it does not load it too.
            if self.floor["packages_path"] not in sys.path:
                sys.path.append(self.floor["packages_path"])
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import padding

            self._load_pem: Any = serialization.load_pem_private_key  # an RSA key: sign(data, padding, hash)
            self._padding, self._sha256 = padding.PKCS1v15(), hashes.SHA256()
            header = {"alg": "RS256", **(self.headers or {})}
            self._rs256_header = b64url(json.dumps(header, separators=(",", ":")).encode())

    def rs256(self, claims: dict[str, Any], pem: str) -> str:
        """A compact JWS signed with ``cryptography`` alone: the least any RS256 signer does."""
        if self._rsa is None or self._rsa[0] != pem:
            self._rsa = (pem, self._load_pem(pem.encode(), password=None))
        payload = b64url(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode())
        signing_input = f"{self._rs256_header}.{payload}"
        signature = self._rsa[1].sign(signing_input.encode(), self._padding, self._sha256)
        return f"{signing_input}.{b64url(signature)}"

    def connect_request(self, request: dict[str, str], secret: str) -> dict[str, str]:
        """DiscourseConnect's request: its ``sig`` checked (constant time) before its payload is read."""
        import base64
        from urllib.parse import parse_qsl

        sso = request["sso"]
        if not hmac.compare_digest(connect_sign(sso, secret), request["sig"]):
            raise ValueError("the sso's signature does not verify")
        return dict(parse_qsl(base64.b64decode(sso).decode()))

    def connect_answer(self, fields: dict[str, Any], secret: str) -> str:
        """DiscourseConnect's answer: the fields as a query string, Base64-encoded, and its signature."""
        import base64
        from urllib.parse import urlencode

        sso = base64.b64encode(urlencode(fields).encode()).decode()
        return urlencode({"sso": sso, "sig": connect_sign(sso, secret)})

    def vendor_token(self, claims: dict[str, Any], key: str) -> str:
        if self.alg == "HS256":
            return str(self.jwt.encode(claims, key, algorithm="HS256", headers=self.headers))
        if self.alg == "RS256":
            return self.rs256(claims, key)
        if self.alg == "discourse-connect":
            return self.connect_answer(claims, key)
        raise ValueError(f"no floor for {self.alg!r}")

    def write(self, claims: dict[str, Any], jti: str | None) -> None:
        write = self.floor.get("write")
        if not write:
            return
        now, email = int(time.time()), claims["email"]
        who = {
            "email": {"S": email},
            "email_lower": {"S": email.lower()},
            "request_id": {"S": "5f0c3a8e-3c1b-4c5e-9a53-1b8f0e6d2a11"},
            "source_ip": {"S": "203.0.113.7"},
            "user_agent": {"S": "Mozilla/5.0"},
        }
        if write["op"] == "put":  # HappyFox, Zendesk: one conditional put of the issued jti
            item = {"jti": {"S": jti or os.urandom(16).hex()}, "vendor": {"S": self.floor["vendor"]}}
            item |= {"name": {"S": claims.get("name") or email}}
            item |= {"issued_at": {"N": str(now)}, "expires_at": {"N": str(now + 120)}, **who}
            item["purge_at"] = {"N": str(now + 90 * 86400)}
            self.dynamodb.put_item(TableName=write["table"], Item=item, ConditionExpression="attribute_not_exists(jti)")
        elif write["op"] == "transact":  # a link: its jti put once, in one transaction with the revocation check
            item = {"jti": {"S": claims["jti"]}, "vendor": {"S": claims["aud"]}, **who}
            item |= {"issued_at": {"N": str(claims["iat"])}, "spent_at": {"N": str(now)}}
            item["expires_at"] = {"N": str(claims["exp"])}
            self.dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "ConditionCheck": {
                            "TableName": write["revocations_table"],
                            "Key": {"email_lower": {"S": email.lower()}},
                            "ConditionExpression": "attribute_not_exists(email_lower) OR not_before < :iat",
                            "ExpressionAttributeValues": {":iat": {"N": str(claims["iat"])}},
                        }
                    },
                    {
                        "Put": {
                            "TableName": write["spent_table"],
                            "Item": item,
                            "ConditionExpression": "attribute_not_exists(jti)",
                        }
                    },
                ]
            )
        else:
            raise ValueError(f"unknown write {write['op']!r}")

    def __call__(self, token: str, login_key: str, vendor_key: str, request: dict[str, str] | None = None) -> str:
        """The vendor's answer (its token; Discourse's ``sso=...&sig=...``) for ``token`` and the vendor's request."""
        floor = self.floor
        request = request or {}
        if self.alg == "discourse-connect":  # the request's signature first, before anything in it is used
            request = self.connect_request(request, vendor_key)
        claims = self.jwt.decode(
            token,
            login_key,
            algorithms=["HS256"],
            audience=floor["audience"],
            leeway=floor["leeway"],
            options={"require": ["email", "aud", "iat", "exp"]},
        )
        if floor.get("form"):  # a link's POST: the form's field checked against the page's cookie (two HMACs)
            key = hmac.new(login_key.encode(), b"form", hashlib.sha256).digest()
            expected = hmac.new(key, f"{claims['jti']}|{floor['form']}".encode(), hashlib.sha256).digest()
            hmac.compare_digest(expected, expected)
        jti = os.urandom(16).hex() if self.draws_jti else None
        if floor.get("write"):
            start = perf()
            self.write(claims, jti)
            self.write_times.append(perf() - start)
            self.io_times.append(self.write_times[-1])
        return self.vendor_token(vendor_claims(self.claims, claims, request, int(time.time()), jti), vendor_key)


# --- OpenID Connect ---------------------------------------------------------------------------------------------


def http_call(
    url: str, *, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection (the bridge's urllib opens one per call too): status, headers, body."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        connection.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body, headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def query_value(url: str, name: str) -> str:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(url).query)[name][0]


def state_claims(oidc: dict[str, Any], sid: str) -> dict[str, Any]:
    """The claims of the bridge's state cookie (sso_bridge.oidc_state), for the floor's own."""
    now = int(time.time())
    claims = {"aud": oidc["state_audience"], "sid": sid, "vendor": oidc["vendor"], "rt": oidc["return_to"]}
    return claims | {"ru": oidc["redirect_uri"], "op": oidc["issuer"], "iat": now, "exp": now + 600}


def with_oidc_packages(path: str) -> Any:
    """joserfc's ``jws``, the OIDC layer's folder appended to ``sys.path`` as the bridge does on a callback."""
    if path not in sys.path:
        sys.path.append(path)
    return importlib.import_module("joserfc.jws")


class CallbackFloor:
    """What any ``/oidc/callback`` must do for a signed-in user (see the module's docstring)."""

    def __init__(self, plan: dict[str, Any], jwt: Any, dynamodb: Any, jws: Any, key: Any, client_secret: str) -> None:
        self.oidc = plan["oidc"]
        self.jwt, self.dynamodb, self.jws, self.key = jwt, dynamodb, jws, key
        self.login_key = plan["login"]["key"]
        import base64

        pair = f"{self.oidc['client_id']}:{client_secret}"
        self.authorization = "Basic " + base64.b64encode(pair.encode()).decode()
        self.write_times: list[float] = []
        self.token_times: list[float] = []
        self.io_times: list[float] = []

    def state_cookie(self, sid: str) -> str:
        """A state cookie's value with the claims the bridge's has (signed with the floor's own key)."""
        return str(self.jwt.encode(state_claims(self.oidc, sid), self.oidc["state_key"], algorithm="HS256"))

    def prepare(self) -> tuple[str, str, str, str, str]:
        """A sign-in in flight, untimed: its cookie, and a code from the stand-in's authorization endpoint."""
        import hashlib
        from urllib.parse import urlencode

        oidc = self.oidc
        sid, nonce, verifier = b64url(os.urandom(24)), b64url(os.urandom(32)), b64url(os.urandom(32))
        query = {"response_type": "code", "client_id": oidc["client_id"], "redirect_uri": oidc["redirect_uri"]}
        query |= {"scope": "openid email profile", "state": sid, "nonce": nonce, "code_challenge_method": "S256"}
        query["code_challenge"] = b64url(hashlib.sha256(verifier.encode()).digest())
        status, headers, _ = http_call(f"{oidc['issuer']}/authorize?{urlencode(query)}")
        if status != 302:
            raise RuntimeError(f"stand-in authorization endpoint answered {status}")
        return self.state_cookie(sid), query_value(headers["location"], "code"), sid, nonce, verifier

    def __call__(self, cookie: str, code: str, sid: str, nonce: str, verifier: str, token_endpoint: str) -> str:
        from urllib.parse import urlencode

        oidc, jwt = self.oidc, self.jwt
        state = jwt.decode(cookie, oidc["state_key"], algorithms=["HS256"], audience=oidc["state_audience"])
        now = int(time.time())
        start = perf()
        item = {"jti": {"S": f"oidc-state:{state['sid']}"}, "vendor": {"S": state["vendor"]}}
        item |= {"spent_at": {"N": str(now)}, "expires_at": {"N": str(state["exp"])}, "request_id": {"S": "-"}}
        self.dynamodb.put_item(
            TableName=oidc["spent_table"], Item=item, ConditionExpression="attribute_not_exists(jti)"
        )
        wrote = perf()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": state["ru"],
            "code_verifier": verifier,
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": self.authorization}
        status, _, body = http_call(token_endpoint, method="POST", body=urlencode(form).encode(), headers=headers)
        redeemed = perf()
        self.write_times.append(wrote - start)
        self.token_times.append(redeemed - wrote)
        self.io_times.append(redeemed - start)
        if status != 200:
            raise RuntimeError(f"stand-in token endpoint answered {status}: {body[:200]!r}")
        verified = self.jws.deserialize_compact(json.loads(body)["id_token"], self.key, algorithms=["RS256"])
        claims = json.loads(verified.payload)
        if claims.get("nonce") != nonce or claims.get("aud") != oidc["client_id"] or claims.get("iss") != state["op"]:
            raise RuntimeError("the stand-in's ID token is not for this sign-in")
        login = {"email": claims["email"], "aud": state["vendor"], "iat": now, "exp": now + 60}
        login |= {"jti": b64url(os.urandom(16)), "name": claims.get("name")}
        return str(jwt.encode(login, self.login_key, algorithm="HS256"))


# --- modes ------------------------------------------------------------------------------------------------------


def cold_handler(plan: dict[str, Any]) -> dict[str, Any]:
    event = json.loads(plan["event_json"])
    context = Context(plan["function"], request_id())
    if os.environ.get("BENCH_MARKER"):  # -X importtime: what follows is the cold start
        print(os.environ["BENCH_MARKER"], file=sys.stderr, flush=True)
    start = perf()
    handler = load_handler(plan["handler"])
    imported = perf()
    if os.environ.get("BENCH_MARKER"):  # the profiling run only (its times are not used): the first request
        print(f"{os.environ['BENCH_MARKER']}: first request", file=sys.stderr, flush=True)
    response = handler(event, context)
    done = perf()
    return {
        "import_s": imported - start,
        "first_request_s": done - imported,
        "total_s": done - start,
        "status": response.get("statusCode"),
        "unexpected": [] if answered_as_planned(plan, response) else [describe(response)],
    }


def answered_as_planned(plan: dict[str, Any], response: dict[str, Any]) -> bool:
    """The status the flow answers with, and where it leads: the start of the redirect (a sign-in's, to the vendor
    with its token parameter), text of the page (Zendesk's form), or for the OpenID steps a part of the redirect."""
    if response.get("statusCode") != plan["expected_status"]:
        return False
    location = str((response.get("headers") or {}).get("Location", ""))
    expected = plan.get("expect_location")
    if expected is not None and expected not in location:
        return False
    answer = plan.get("answer")
    if answer is None:
        return True
    if plan["expected_status"] == 200:
        body = str(response.get("body") or "")
        return answer["text"] in body and f'name="{answer["param"]}"' in body
    param = answer["param"]
    return location.startswith(answer["text"]) and (f"?{param}=" in location or f"&{param}=" in location)


def describe(response: dict[str, Any]) -> str:
    location = str((response.get("headers") or {}).get("Location", ""))[:80]
    return f"{response.get('statusCode')}: {location or str(response.get('body'))[:200]}"


def cold_floor(plan: dict[str, Any]) -> dict[str, Any]:
    if (plan.get("oidc") or {}).get("step") == "callback":
        return cold_callback_floor(plan)
    cold, floor = plan["cold"], plan["floor"]
    start = perf()
    import boto3
    import jwt

    secretsmanager = boto3.client("secretsmanager")
    dynamodb = boto3.client("dynamodb") if floor.get("write") else None
    imported = perf()
    login_key = secretsmanager.get_secret_value(SecretId=cold["login_secret_id"])["SecretString"]
    vendor_key = secretsmanager.get_secret_value(SecretId=cold["vendor_secret_id"])["SecretString"]
    # An RS256 floor imports cryptography here, as the handler's first token does (its key parsed on first use).
    Floor(plan, jwt, dynamodb)(cold["token"], login_key, vendor_key, cold["request"])
    done = perf()
    return {"import_s": imported - start, "first_request_s": done - imported, "total_s": done - start, "status": 0}


def cold_callback_floor(plan: dict[str, Any]) -> dict[str, Any]:
    cold, oidc = plan["cold"], plan["oidc"]
    start = perf()
    import boto3
    import jwt

    jws = with_oidc_packages(oidc["packages_path"])
    from joserfc.jwk import JWKRegistry

    secretsmanager = boto3.client("secretsmanager")
    dynamodb = boto3.client("dynamodb")
    imported = perf()
    login_key = secretsmanager.get_secret_value(SecretId=cold["login_secret_id"])["SecretString"]
    client_secret = secretsmanager.get_secret_value(SecretId=oidc["client_secret_id"])["SecretString"]
    discovery_url = oidc["issuer"] + "/.well-known/openid-configuration"
    metadata = json.loads(http_call(discovery_url, headers={"Accept": "application/json"})[2])
    keys = json.loads(http_call(metadata["jwks_uri"], headers={"Accept": "application/json"})[2])["keys"]
    key = JWKRegistry.import_key(keys[0])
    floor = CallbackFloor(
        {**plan, "login": {**plan["login"], "key": login_key}}, jwt, dynamodb, jws, key, client_secret
    )
    cookie, code, sid, nonce, verifier = cold["prepared"]
    floor(cookie, code, sid, nonce, verifier, metadata["token_endpoint"])
    done = perf()
    return {"import_s": imported - start, "first_request_s": done - imported, "total_s": done - start, "status": 0}


# --- warm: what one call costs once the container is up -----------------------------------------------------


class LoginCalls:
    """Sign-ins with a login token (and, for the OpenID start, without one): events and floor calls."""

    def __init__(self, plan: dict[str, Any], jwt: Any, boto3: Any) -> None:
        self.plan, self.jwt, self.login = plan, jwt, plan["login"]
        self.floor = Floor(plan, jwt, boto3.client("dynamodb") if plan["floor"].get("write") else None)
        self.keys = (self.login["key"], plan["floor"]["vendor_key"])
        self.dynamodb = self.floor.dynamodb
        self.with_token = (plan.get("oidc") or {}).get("step") != "start"

    def handler_event(self, handler: Any) -> tuple[dict[str, Any], str]:
        jti = os.urandom(16).hex()
        if self.with_token:
            token, field = login_token(self.jwt, self.login, jti), form_field(self.plan, jti)
            return event_with(self.plan, token, field, vendor_request(self.plan)[0]), jti
        event: dict[str, Any] = json.loads(self.plan["event_json"])  # signed out: no login token
        event["requestContext"]["requestId"] = request_id()
        return event, jti

    def floor_args(self) -> tuple[tuple[Any, ...], str]:
        jti = os.urandom(16).hex()
        return (login_token(self.jwt, self.login, jti), *self.keys, vendor_request(self.plan)[1]), jti

    def floor_call(self, *args: Any) -> None:
        self.floor(*args)


class CallbackCalls:
    """``/oidc/callback`` calls, each after its own sign-in start and authorization (untimed), and their floor."""

    def __init__(self, plan: dict[str, Any], jwt: Any, boto3: Any) -> None:
        self.plan, self.oidc = plan, plan["oidc"]
        self.dynamodb = boto3.client("dynamodb")
        self.sign_in: dict[str, Any] = json.loads(plan["event_json"])
        self.callback: dict[str, Any] = json.loads(self.oidc["callback_event_json"])
        self._floor: CallbackFloor | None = None
        self.token_endpoint = ""

    @property
    def floor(self) -> CallbackFloor:
        """Made on first use, after the handler's warm-up: the key set is fetched (and imported) once."""
        if self._floor is None:
            import boto3
            import jwt

            jws = with_oidc_packages(self.oidc["packages_path"])
            from joserfc.jwk import JWKRegistry

            metadata = json.loads(http_call(self.oidc["issuer"] + "/.well-known/openid-configuration")[2])
            keys = json.loads(http_call(metadata["jwks_uri"])[2])["keys"]
            self.token_endpoint = metadata["token_endpoint"]
            key = JWKRegistry.import_key(keys[0])
            dynamodb = boto3.client("dynamodb")
            self._floor = CallbackFloor(self.plan, jwt, dynamodb, jws, key, self.oidc["client_secret"])
        return self._floor

    def handler_event(self, handler: Any) -> tuple[dict[str, Any], str]:
        """The browser's part: the sign-in route's redirect and cookie, the provider's redirect back."""
        plan = self.plan
        start = json.loads(json.dumps(self.sign_in))
        start["requestContext"]["requestId"] = request_id()
        os.environ["_X_AMZN_TRACE_ID"] = trace_header(plan["sampled"])
        response = handler(start, Context(plan["function"], request_id()))
        if response.get("statusCode") != 302 or not response.get("cookies"):
            raise RuntimeError(f"the sign-in route did not send the browser to the provider: {describe(response)}")
        cookie = str(response["cookies"][0]).split(";", 1)[0]
        status, headers, _ = http_call(response["headers"]["Location"])
        if status != 302:
            raise RuntimeError(f"stand-in authorization endpoint answered {status}")
        back = headers["location"]
        event = json.loads(json.dumps(self.callback))
        event["rawQueryString"] = back.split("?", 1)[1]
        event["cookies"] = [cookie]
        event["requestContext"]["requestId"] = request_id()
        return event, f"oidc-state:{query_value(back, 'state')}"

    def floor_args(self) -> tuple[tuple[Any, ...], str]:
        prepared = self.floor.prepare()
        return (*prepared, self.token_endpoint), f"oidc-state:{prepared[2]}"

    def floor_call(self, *args: Any) -> None:
        self.floor(*args)


def warm(plan: dict[str, Any]) -> dict[str, Any]:
    handler = load_handler(plan["handler"])
    import boto3
    import jwt

    calls: LoginCalls | CallbackCalls
    if (plan.get("oidc") or {}).get("step") == "callback":
        calls = CallbackCalls(plan, jwt, boto3)
    else:
        calls = LoginCalls(plan, jwt, boto3)
    sampled = plan["sampled"]
    unexpected: list[str] = []

    # A link's spend is one record in the spent-links table (an OpenID sign-in state's too). Moto copies a table for
    # every transaction on it (its rollback), so a growing table would make each spend slower than the one before:
    # each record is deleted again after its call, outside the timing, for handler and floor alike (DynamoDB's cost
    # does not grow with a table).
    cleanup: dict[str, str] | None = plan.get("cleanup")
    dynamodb = calls.dynamodb

    def forget(key: str) -> None:
        if cleanup is not None:
            dynamodb.delete_item(TableName=cleanup["table"], Key={cleanup["key"]: {"S": key}})

    def handler_calls(count: int) -> list[float]:
        batch = []
        for _ in range(count):
            event, key = calls.handler_event(handler)
            batch.append((key, event, Context(plan["function"], request_id()), trace_header(sampled)))
        times = []
        for key, event, context, trace in batch:
            os.environ["_X_AMZN_TRACE_ID"] = trace  # as the runtime does before each invocation
            start = perf()
            response = handler(event, context)
            times.append(perf() - start)
            if not answered_as_planned(plan, response) and len(unexpected) < 5:
                unexpected.append(describe(response))
            forget(key)
        return times

    def floor_calls(count: int) -> list[float]:
        batch = [calls.floor_args() for _ in range(count)]
        times = []
        for args, key in batch:
            start = perf()
            calls.floor_call(*args)
            times.append(perf() - start)
            forget(key)
        return times

    # Warm-up, then calls per round so that a round of the handler lasts about round_seconds.
    warmup = handler_calls(plan["warmup"])
    floor_calls(plan["warmup"])
    if unexpected:
        return {"unexpected": unexpected}
    per_call = sorted(warmup)[len(warmup) // 2]
    calls_per_round = plan["calls"] or max(50, min(2000, int(plan["round_seconds"] / max(per_call, 1e-6))))
    floor = calls.floor
    for kept in (floor.write_times, floor.io_times, getattr(floor, "token_times", [])):
        kept.clear()
    rounds: list[float] = []
    floor_rounds: list[float] = []
    every: list[float] = []
    for _ in range(plan["rounds"]):
        times = handler_calls(calls_per_round)
        every += times
        rounds.append(sum(times) / len(times))
        times = floor_calls(calls_per_round)
        floor_rounds.append(sum(times) / len(times))
    every.sort()

    def p50(values: list[float]) -> float:
        return sorted(values)[len(values) // 2] if values else 0.0

    return {
        "calls": calls_per_round,
        "rounds_s": rounds,
        "floor_rounds_s": floor_rounds,
        "call_p50_s": every[len(every) // 2],
        "call_p99_s": every[min(len(every) - 1, int(len(every) * 0.99))],
        "floor_write_p50_s": p50(floor.write_times),
        "floor_token_p50_s": p50(getattr(floor, "token_times", [])),
        "floor_io_p50_s": p50(floor.io_times),
        "unexpected": unexpected,
    }


def peak_rss_mb() -> float:
    """This process image's peak resident memory. Not ``getrusage().ru_maxrss``: Linux carries the parent's peak
    across fork and exec into it, so every child of the bench would report the bench's own size."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


MODES = {"warm": warm, "cold-handler": cold_handler, "cold-floor": cold_floor}


def main() -> None:
    plan_path, result_path = sys.argv[1:3]
    with open(plan_path) as text:
        plan = json.load(text)
    result = MODES[plan["mode"]](plan)
    result["max_rss_mb"] = peak_rss_mb()
    result["modules"] = len(sys.modules)
    result["cryptography_loaded"] = "cryptography" in sys.modules
    result["cryptography_modules"] = sum(1 for name in sys.modules if name.split(".")[0] == "cryptography")
    result["cryptography_from"] = getattr(sys.modules.get("cryptography"), "__file__", None)
    result["joserfc_from"] = getattr(sys.modules.get("joserfc"), "__file__", None)
    result["python"] = sys.version.split()[0]
    result["jwt_from"] = getattr(sys.modules.get("jwt"), "__file__", None)
    result["boto3_from"] = getattr(sys.modules.get("boto3"), "__file__", None)
    with open(result_path, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
