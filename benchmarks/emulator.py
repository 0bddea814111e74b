"""AWS for the bench: moto's server (Secrets Manager), Amazon's DynamoDB Local, and a stand-in X-Ray daemon.

The functions under test run in other processes (the runtime venv) and reach these over localhost, as a function
in Lambda reaches its region's endpoints and its X-Ray daemon: one HTTP round trip per call, a UDP datagram per
trace document. The secrets and tables are the template's (``lambda_env.Stack``): each secret holds the key the
bench signs with, each table is created from its definition.

DynamoDB is DynamoDB Local (local/dynamodb.py), the engine AWS ships, when it can run here: its conditional put
costs about half of moto's, and it is the write that dominates the HappyFox and link rows. Without Java or the
package (or with ``dynamodb="moto"``), moto serves DynamoDB too; ``dynamodb_engine`` says which did.
"""

from __future__ import annotations

import logging
import socket
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from benchmarks.lambda_env import REGION, Stack, secret_value
from local.dynamodb import DynamoDBLocal, unavailable
from local.template import table_definition

__all__ = ["Emulator", "XRayDaemon"]


class XRayDaemon:
    """Receives the X-Ray SDK's UDP datagrams and counts them, as evidence that tracing ran (or did not)."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self.address: tuple[str, int] = self._socket.getsockname()[:2]
        self.datagrams = 0
        self._thread = threading.Thread(target=self._receive, name="xray-daemon", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while True:
            try:
                self._socket.recv(65536)
            except OSError:
                return
            self.datagrams += 1

    def close(self) -> None:
        self._socket.close()


@dataclass
class Emulator(AbstractContextManager["Emulator"]):
    """Moto on a free localhost port, and DynamoDB Local on another (``dynamodb="local"``, when it can run), seeded
    with the stack's secrets and tables; an X-Ray daemon beside them."""

    stack: Stack
    dynamodb: str = "local"  # "local": DynamoDB Local when it can run, else moto; "moto": moto
    endpoint: str = ""
    dynamodb_endpoint: str = ""  # where DynamoDB is: DynamoDB Local's endpoint, or moto's
    dynamodb_engine: str = ""  # which engine that is, for the results: "DynamoDB Local 3.3.1", "moto (why)"
    xray: XRayDaemon | None = None
    _server: ThreadedMotoServer | None = field(default=None, repr=False)
    _engine: DynamoDBLocal | None = field(default=None, repr=False)

    def __enter__(self) -> Emulator:
        missing = unavailable() if self.dynamodb == "local" else None
        if self.dynamodb == "local" and missing is None:
            self._engine = DynamoDBLocal(shared=True)
            self._engine.launch()  # the JVM boots while moto starts
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = self.dynamodb_endpoint = f"http://{host}:{port}"
        self.dynamodb_engine = f"moto ({missing})" if missing else "moto"
        if self._engine is not None:
            try:
                self._engine.wait_ready()
            except BaseException:
                self.__exit__(None, None, None)
                raise
            self.dynamodb_endpoint = self._engine.endpoint
            self.dynamodb_engine = f"DynamoDB Local {self._engine.version}".strip()
            self._warm_up()
        self.xray = XRayDaemon()
        self._seed()
        return self

    def _warm_up(self, puts: int = 500) -> None:
        """A JVM answers its first calls slowly, until its JIT has compiled them: the flows' writes must not pay."""
        dynamodb, table = self.client("dynamodb"), "bench-warm-up"
        dynamodb.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "jti", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "jti", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for i in range(puts):
            item = {"jti": {"S": f"{i:032x}"}, "expires_at": {"N": "1800000000"}}
            dynamodb.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(jti)")
            dynamodb.delete_item(TableName=table, Key={"jti": item["jti"]})
        dynamodb.delete_table(TableName=table)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.xray is not None:
            self.xray.close()
        if self._server is not None:
            self._server.stop()
        if self._engine is not None:
            self._engine.stop()

    def client(self, service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            region_name=REGION,
            endpoint_url=self.dynamodb_endpoint if service == "dynamodb" else self.endpoint,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )

    def _seed(self) -> None:
        self.seed(self.stack, set(self.stack.all_resources()))

    def seed(self, stack: Stack, logical_ids: set[str]) -> None:
        """Create ``stack``'s secrets and tables among ``logical_ids`` (another parameter set's extra resources, say,
        after ``Stack.with_parameters``); each secret's ARN becomes moto's in ``stack.physical``."""
        secretsmanager = self.client("secretsmanager")
        for logical_id, resource in stack.resources("AWS::SecretsManager::Secret").items():
            if logical_id not in logical_ids:
                continue
            # The name inside the ARN the functions get (its last six characters are the random tail).
            name = stack.physical[logical_id].split(":secret:", 1)[1][:-7]
            initial = resource.get("Properties", {}).get("SecretString")
            created = secretsmanager.create_secret(
                Name=name, SecretString=stack.resolve(initial) if initial else secret_value(logical_id)
            )
            stack.physical[logical_id] = created["ARN"]  # moto draws its own tail
            # As after deployment: the operator put the vendor's key over the placeholder (AWSPREVIOUS exists).
            secretsmanager.put_secret_value(SecretId=created["ARN"], SecretString=secret_value(logical_id))
        dynamodb = self.client("dynamodb")
        for logical_id, resource in stack.resources("AWS::DynamoDB::Table").items():
            if logical_id not in logical_ids:
                continue
            name = stack.physical[logical_id]
            dynamodb.create_table(TableName=name, **table_definition(logical_id, stack.template))
            ttl = resource.get("Properties", {}).get("TimeToLiveSpecification")
            if ttl and ttl.get("Enabled"):
                dynamodb.update_time_to_live(
                    TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
                )
