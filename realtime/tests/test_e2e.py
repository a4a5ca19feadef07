"""End to end: real uvicorn processes serving ``enque.asgi:application``, a real websocket
client, and a reply made through the HTTP API.

The servers share this test's data. On PostgreSQL they connect to the test database itself
(the test is transactional, so the rows are committed and flushed afterwards). On SQLite
the test database lives in this process's memory, so it is copied with SQLite's backup API
into a file the servers open — a migrated database in milliseconds instead of a fresh
``migrate``. They use the session's Redis (embedded or REDIS_URL) and this process's
secrets, so the tokens issued here are theirs too.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from django.conf import settings
from django.db import connection
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from enque.testing import redis_available, require_service
from realtime.tests.conftest import access_token
from tickets.models import Ticket
from workspaces.models import Agent

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

START_TIMEOUT = 60.0
TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a server process that sees this test's database and Redis."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "TEST_DATABASE_NAME")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="enque.settings",
        ENQUE_VAR_DIR=str(tmp_path),
        SECRET_KEY=settings.SECRET_KEY,
        JWT_SECRET=settings.JWT_SECRET,
        DATABASE_ENCRYPTION_KEY=settings.DATABASE_ENCRYPTION_KEY,
        LOG_LEVEL="warning",
        PYTHONUNBUFFERED="1",
    )
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        user = quote(db["USER"] or "", safe="")
        password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
        env["DATABASE_URL"] = (
            f"postgres://{user}{password}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}"
            f"/{db['NAME']}"
        )
    else:
        connection.ensure_connection()
        target = __import__("sqlite3").connect(tmp_path / "enque.sqlite3")
        try:
            connection.connection.backup(target)
        finally:
            target.close()
    env["REDIS_URL"] = "memory" if settings.REDIS_MODE == "memory" else settings.REDIS_URL
    return env


class Server:
    def __init__(self, env: dict[str, str], log: Path, log_level: str = "warning") -> None:
        self.port = free_port()
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "uvicorn", "enque.asgi:application",
                    "--host", "127.0.0.1", "--port", str(self.port),
                    "--lifespan", "off", "--log-level", log_level,
                ],
                cwd=settings.BASE_DIR,
                env={**env, "LOG_LEVEL": log_level},
                stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited with {self.process.returncode}:\n{self.output()}")
            try:
                if requests.get(f"{self.http}/healthz", timeout=1).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):
                # Not listening yet, or its first request (importing every view) is slow
                # on a loaded machine: ask again until the deadline.
                pass
            time.sleep(0.1)
        pytest.fail(f"the server did not answer /healthz in time:\n{self.output()}")

    def socket(self, token: str) -> ClientConnection:
        return connect(f"ws://127.0.0.1:{self.port}/realtime?token={token}", open_timeout=TIMEOUT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture
def start_servers(tmp_path: Path) -> Iterator[Callable[..., list[Server]]]:
    servers: list[Server] = []

    def start(count: int, log_level: str = "warning") -> list[Server]:
        env = server_env(tmp_path)
        started = [Server(env, tmp_path / f"server-{i}.log", log_level) for i in range(count)]
        servers.extend(started)
        deadline = time.monotonic() + START_TIMEOUT
        for server in started:
            server.wait_ready(deadline)
        return started

    yield start
    for server in servers:
        server.stop()


def frames(ws: ClientConnection, timeout: float) -> Iterator[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            yield json.loads(ws.recv(timeout=left))
        except TimeoutError:
            return


def next_of_type(ws: ClientConnection, type_: str) -> dict[str, Any]:
    for frame in frames(ws, TIMEOUT):
        if frame["type"] == type_:
            return frame
    pytest.fail(f"no {type_} frame within {TIMEOUT} s")


def subscribe(ws: ClientConnection, channel: str) -> None:
    assert next_of_type(ws, "welcome")
    ws.send(json.dumps({"type": "subscribe", "payload": {"channel": channel}}))
    assert next_of_type(ws, "subscribed")["payload"] == {"channel": channel}


def reply(server: Server, agent: Agent, number: int) -> requests.Response:
    return requests.post(
        f"{server.http}/v1/tickets/{number}/reply",
        json={"body": "We are on it."},
        headers={"Authorization": f"Bearer {access_token(agent)}"},
        timeout=TIMEOUT,
    )


def test_a_reply_through_the_http_api_reaches_a_socket_and_not_charlies(
    start_servers: Callable[..., list[Server]],
    alice: Agent,
    bob: Agent,
    charlie: Agent,
    ticket_a: Ticket,
    ticket_b: Ticket,
) -> None:
    (server,) = start_servers(1, log_level="info")
    alice_token = access_token(alice)

    with (
        server.socket(alice_token) as alice_ws,
        server.socket(access_token(charlie)) as charlie_ws,
    ):
        subscribe(alice_ws, "tickets")
        subscribe(charlie_ws, "tickets")

        response = reply(server, bob, ticket_a.number)

        assert response.status_code == 201, response.text
        event = next_of_type(alice_ws, "comment.created")
        assert (event["workspace"], event["ticket"]) == (alice.workspace_id, ticket_a.number)
        assert event["data"]["comment"] == response.json()["id"]
        charlie_ws.send(json.dumps({"type": "ping"}))
        assert [f["type"] for f in frames(charlie_ws, 1.0)] == ["pong"]
    # The server logged the handshakes, without the token (realtime/log_filters.py).
    log = server.output()
    assert "/realtime?token=[redacted]" in log
    assert alice_token not in log


def test_a_bad_token_is_refused_with_4401(
    start_servers: Callable[..., list[Server]], alice: Agent
) -> None:
    (server,) = start_servers(1)

    with server.socket("not-a-token") as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=TIMEOUT)

    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401


def test_an_event_caused_through_one_process_reaches_a_socket_on_another(
    start_servers: Callable[..., list[Server]], alice: Agent, bob: Agent, ticket_a: Ticket
) -> None:
    require_service(
        "redis",
        redis_available(),
        "two server processes share events only through Redis (REDIS_URL=memory here)",
    )
    server_a, server_b = start_servers(2)

    with server_b.socket(access_token(alice)) as alice_on_b:
        subscribe(alice_on_b, f"ticket:{ticket_a.number}")

        response = reply(server_a, bob, ticket_a.number)

        assert response.status_code == 201, response.text
        event = next_of_type(alice_on_b, "comment.created")
        assert event["data"]["comment"] == response.json()["id"]
