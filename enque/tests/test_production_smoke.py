"""The production configuration, started for real and driven over HTTP and websockets.

The processes are the ones docker-compose.yml runs (``enque.deploy_commands``; see
``test_deploy_files.py``), with ``ENVIRONMENT=production`` and freshly generated secrets,
against this machine's PostgreSQL (a database created for this test and dropped after),
its Redis (a database number of its own) and moto's S3 server:

    migrate, collectstatic (as the image build)      one-shot, must exit 0
    web A   uvicorn --workers 2   (the compose web service)
    web B   the same, on another port (a second web container behind the load balancer)
    worker  celery worker, every queue
    beat    celery beat, DatabaseScheduler, scheduled replies every 2 s

Then: register; websockets on both web servers; upload an attachment (it lands in the
bucket with its type and size); create a ticket with it through web B and see the event on
web A's sockets; reply through web A and see it on web B's sockets (events cross processes
through channels-redis); download the attachment through its signed URL; schedule a reply
a few seconds ahead and see beat + worker post it (HTTP and websocket); load an admin page
with its collected static files. Finally SIGTERM everything, as `docker compose stop` does:
sockets are closed with 1012 and every process exits 0 within its grace period.

Needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL): skipped without them, a failure under
ENQUE_REQUIRE_SERVICES=1 (CI).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
import redis
import requests
from django.conf import settings
from psycopg import sql
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from enque import child_processes, config, deploy_commands
from enque.testing import S3Server, free_port, redis_available, require_service

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]

# The whole test, start to finish (CI budget: well under 2.5 minutes).
BUDGET = 150.0
START_TIMEOUT = 60.0
EVENT_TIMEOUT = 15.0
# The scheduled reply is due 3 s after it is made; beat ticks every 2 s here.
SCHEDULED_TIMEOUT = 90.0
SCHEDULED_COMMENTS_INTERVAL = 2
# How long the sockets wait, idle, before the first event.
IDLE_SECONDS = 7.0
# SIGTERM to exit: uvicorn's graceful timeout (20 s) plus a margin, as compose allows 30 s.
STOP_TIMEOUT = 30.0

PDF = b"%PDF-1.7\n" + b"smoke test attachment\n" * 200


# --- Services: a fresh PostgreSQL database, a Redis database of its own -----------------


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """CREATE DATABASE enque_smoke_<random> on the suite's server; DROP it afterwards."""
    db = settings.DATABASES["default"]
    name = f"enque_smoke_{uuid.uuid4().hex[:12]}"
    params = {
        "host": db["HOST"] or None,
        "port": db["PORT"] or None,
        "user": db["USER"] or None,
        "password": db["PASSWORD"] or None,
    }
    # Any existing database will do to issue CREATE DATABASE from.
    with psycopg.connect(dbname=db["NAME"], autocommit=True, **params) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    user = quote(db["USER"] or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    host = db["HOST"] or "localhost"
    try:
        yield f"postgres://{user}{password}@{host}:{db['PORT'] or 5432}/{name}"
    finally:
        with psycopg.connect(dbname=db["NAME"], autocommit=True, **params) as admin:
            # FORCE: a process killed after a failure may still hold a connection.
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextlib.contextmanager
def spare_redis_database() -> Iterator[str]:
    """An empty Redis database other than the suite's, claimed with a marker key and
    flushed afterwards: cache, channel layer and broker of the smoke deployment."""
    parts = urlsplit(settings.REDIS_URL)
    suite_db = int(parts.path.strip("/") or 0)
    for offset in range(1, 16):
        number = (suite_db + offset) % 16
        url = urlunsplit(parts._replace(path=f"/{number}"))
        client = redis.Redis.from_url(url)
        if client.dbsize() == 0 and client.set("enque:smoke:claimed", "1", nx=True):
            break
        client.close()
    else:
        pytest.fail(f"no empty Redis database next to {settings.REDIS_URL}")
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


# --- The processes ----------------------------------------------------------------------


@dataclass
class Process:
    name: str
    argv: list[str]
    log: Path
    process: subprocess.Popen[Any] | None = None
    _out: IO[bytes] | None = field(default=None, repr=False)

    def start(self, env: dict[str, str]) -> None:
        self._out = self.log.open("wb")
        self.process = child_processes.spawn(
            deploy_commands.with_python(self.argv),
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def output(self, tail: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-tail:] if self.log.exists() else ""

    def check_running(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            pytest.fail(f"{self.name} exited with {self.process.returncode}:\n{self.output()}")

    def wait_for_line(self, text: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            self.check_running()
            if text in self.log.read_text(errors="replace"):
                return
            time.sleep(0.2)
        pytest.fail(f"{self.name} did not log {text!r} in time:\n{self.output()}")

    def close(self) -> None:
        if self._out is not None:
            self._out.close()


@dataclass
class Web(Process):
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, deadline: float) -> None:
        """/readyz: database, cache, channel layer and broker all answer."""
        while time.monotonic() < deadline:
            self.check_running()
            with contextlib.suppress(requests.ConnectionError, requests.Timeout):
                if requests.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        pytest.fail(f"{self.name} was not ready in time:\n{self.output()}")

    def socket(self, token: str, stack: contextlib.ExitStack) -> ClientConnection:
        """A websocket subscribed to the workspace's tickets, closed with ``stack``."""
        ws = stack.enter_context(
            connect(
                f"ws://127.0.0.1:{self.port}/realtime?token={token}", open_timeout=EVENT_TIMEOUT
            )
        )
        assert next_frame(ws, "welcome")
        ws.send(json.dumps({"type": "subscribe", "payload": {"channel": "tickets"}}))
        assert next_frame(ws, "subscribed")["payload"] == {"channel": "tickets"}
        return ws


def run_once(name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("wb") as out:
        result = subprocess.run(
            deploy_commands.with_python(argv),
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=START_TIMEOUT,
            check=False,
        )
    assert result.returncode == 0, f"{name} failed:\n{log.read_text(errors='replace')[-6000:]}"


def production_env(
    tmp_path: Path, *, database_url: str, redis_url: str, s3: dict[str, str]
) -> dict[str, str]:
    # Nothing of this machine's configuration leaks in: only what a deployment sets.
    inherited = {
        key: value
        for key, value in os.environ.items()
        if key in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "SSL_CERT_FILE")
    }
    return {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "enque.settings",
        "PYTHONUNBUFFERED": "1",
        "ENVIRONMENT": "production",
        **{name: generate() for name, generate in config.GENERATED_SECRETS.items()},
        "ALLOWED_HOSTS": "127.0.0.1",
        # Plain http on loopback; everything else keeps its production default.
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        **s3,
        "ENQUE_VAR_DIR": str(tmp_path / "var"),
        "STATIC_ROOT": str(tmp_path / "static"),
        "LOG_LEVEL": "info",
        "SCHEDULED_COMMENTS_INTERVAL": str(SCHEDULED_COMMENTS_INTERVAL),
    }


# --- Websocket helpers --------------------------------------------------------------------


def next_frame(
    ws: ClientConnection, type_: str, timeout: float = EVENT_TIMEOUT, **match: Any
) -> dict[str, Any]:
    """The next frame of this type whose top-level fields equal ``match``."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            frame = json.loads(ws.recv(timeout=left))
        except TimeoutError:
            break
        if frame["type"] == type_ and all(frame.get(k) == v for k, v in match.items()):
            return frame
    pytest.fail(f"no {type_} frame matching {match} within {timeout} s")


def close_code(ws: ClientConnection, timeout: float) -> int | None:
    """Read until the server closes the socket; its close code."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            ws.recv(timeout=left)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        except TimeoutError:
            break
    pytest.fail(f"the server did not close the socket within {timeout} s")


# --- The test -----------------------------------------------------------------------------


def test_the_production_configuration_serves_end_to_end(moto_s3: S3Server, tmp_path: Path) -> None:
    require_service(
        "postgresql", settings.IS_POSTGRES, "the smoke test needs PostgreSQL (DATABASE_URL)"
    )
    require_service(
        "redis",
        settings.REDIS_MODE == "external" and redis_available(),
        "the smoke test needs a Redis server (REDIS_URL)",
    )
    began = time.monotonic()
    bucket = moto_s3.create_bucket("enque-smoke")
    with fresh_database() as database_url, spare_redis_database() as redis_url:
        env = production_env(
            tmp_path,
            database_url=database_url,
            redis_url=redis_url,
            s3=moto_s3.environment(bucket),
        )
        run_once("migrate", deploy_commands.migrate(), env, tmp_path / "migrate.log")
        run_once(
            "collectstatic",
            ["python", "manage.py", "collectstatic", "--noinput"],
            env,
            tmp_path / "collectstatic.log",
        )

        port_a, port_b = free_port(), free_port()
        web_a = Web(
            "web A",
            deploy_commands.web(host="127.0.0.1", port=port_a),
            tmp_path / "web-a.log",
            port=port_a,
        )
        web_b = Web(
            "web B",
            deploy_commands.web(host="127.0.0.1", port=port_b),
            tmp_path / "web-b.log",
            port=port_b,
        )
        worker = Process("worker", deploy_commands.worker(), tmp_path / "worker.log")
        beat = Process("beat", deploy_commands.beat(), tmp_path / "beat.log")
        processes: list[Process] = [web_a, web_b, worker, beat]
        sockets_stack = contextlib.ExitStack()
        try:
            for process in processes:
                process.start(env)
            deadline = time.monotonic() + START_TIMEOUT
            web_a.wait_ready(deadline)
            web_b.wait_ready(deadline)
            worker.wait_for_line(" ready.", deadline)
            beat.wait_for_line("beat: Starting...", deadline)

            token, sockets = drive(web_a, web_b, moto_s3, bucket, sockets_stack)
            stop_gracefully(processes, sockets)
            check_logs(processes, token)
        finally:
            sockets_stack.close()
            running = [p.process for p in processes if p.process and p.process.poll() is None]
            child_processes.stop(running, timeout=10)
            for process in processes:
                process.close()
                # Shown by pytest only when the test fails.
                print(f"----- {process.name} -----\n{process.output(3000)}")

    duration = time.monotonic() - began
    print(f"smoke test: {duration:.1f} s")
    assert duration < BUDGET


def drive(
    web_a: Web, web_b: Web, s3: S3Server, bucket: str, stack: contextlib.ExitStack
) -> tuple[str, list[ClientConnection]]:
    """The user journey; returns the access token and the websockets, still open."""
    # Sign up: a user, a workspace, a token pair.
    registered = requests.post(
        f"{web_a.url}/v1/auth/register",
        json={
            "name": "Sam Smoke",
            "email": f"sam-{uuid.uuid4().hex[:8]}@smoke.test",
            "password": "a long and unguessable passphrase 42",
            "workspace_name": "Smoke Test Inc",
        },
        timeout=EVENT_TIMEOUT,
    )
    assert registered.status_code == 201, registered.text
    token = registered.json()["access"]
    auth = {"Authorization": f"Bearer {token}"}

    # Several sockets on each server (two uvicorn workers each: the kernel spreads them).
    sockets_a = [web_a.socket(token, stack) for _ in range(3)]
    sockets_b = [web_b.socket(token, stack) for _ in range(3)]
    everyone = [*sockets_a, *sockets_b]
    # Sockets sit idle most of their life: past the channel layer's 5 s blocking read (and
    # redis-py's default 5 s socket timeout) they must still be there.
    time.sleep(IDLE_SECONDS)

    # An attachment, uploaded through web A, stored in the bucket with its type and size.
    uploaded = requests.post(
        f"{web_a.url}/v1/attachments",
        files={"file": ("report.pdf", PDF, "application/octet-stream")},
        headers=auth,
        timeout=EVENT_TIMEOUT,
    )
    assert uploaded.status_code == 201, uploaded.text
    attachment = uploaded.json()
    objects = s3.client().list_objects_v2(Bucket=bucket)["Contents"]
    assert len(objects) == 1
    head = s3.client().head_object(Bucket=bucket, Key=objects[0]["Key"])
    assert (head["ContentType"], head["ContentLength"]) == ("application/pdf", len(PDF))
    assert (attachment["content_type"], attachment["size"]) == ("application/pdf", len(PDF))

    # A ticket with it, created through web B: every socket on web A hears of it.
    created = requests.post(
        f"{web_b.url}/v1/tickets",
        json={
            "subject": "The printer is on fire",
            "body": "Smoke everywhere.",
            "customer": {"email": "carol@customer.test", "name": "Carol Customer"},
            "attachment_ids": [attachment["id"]],
        },
        headers=auth,
        timeout=EVENT_TIMEOUT,
    )
    assert created.status_code == 201, created.text
    number = created.json()["number"]
    for ws in everyone:
        next_frame(ws, "ticket.created", ticket=number)

    # The download is a redirect to a signed URL on the storage, which serves the bytes.
    download = requests.get(
        f"{web_a.url}/v1/attachments/{attachment['id']}/download",
        headers=auth,
        allow_redirects=False,
        timeout=EVENT_TIMEOUT,
    )
    assert download.status_code == 302, download.text
    assert download.headers["Location"].startswith(f"{s3.endpoint_url}/{bucket}/")
    fetched = requests.get(download.headers["Location"], timeout=EVENT_TIMEOUT)
    assert (fetched.status_code, fetched.content) == (200, PDF)

    # A reply through web A reaches the socket held by web B (another process).
    replied = requests.post(
        f"{web_a.url}/v1/tickets/{number}/reply",
        json={"body": "We are on our way."},
        headers=auth,
        timeout=EVENT_TIMEOUT,
    )
    assert replied.status_code == 201, replied.text
    reply_id = replied.json()["id"]
    for ws in everyone:
        event = next_frame(ws, "comment.created", ticket=number)
        assert event["data"]["comment"] == reply_id

    # A reply scheduled 3 s ahead: beat's job finds it due, the worker posts it, and the
    # worker's event reaches the sockets too.
    send_at = datetime.now(UTC) + timedelta(seconds=3)
    scheduled = requests.post(
        f"{web_b.url}/v1/tickets/{number}/reply",
        json={"body": "Following up, as promised.", "send_at": send_at.isoformat()},
        headers=auth,
        timeout=EVENT_TIMEOUT,
    )
    assert scheduled.status_code == 201, scheduled.text
    deadline = time.monotonic() + SCHEDULED_TIMEOUT
    posted = None
    while posted is None and time.monotonic() < deadline:
        thread = requests.get(
            f"{web_a.url}/v1/tickets/{number}/comments", headers=auth, timeout=EVENT_TIMEOUT
        )
        assert thread.status_code == 200, thread.text
        posted = next(
            (c for c in thread.json()["results"] if "as promised" in c["body_text"]), None
        )
        if posted is None:
            time.sleep(0.5)
    assert posted is not None, f"the scheduled reply was not posted in {SCHEDULED_TIMEOUT} s"
    for ws in everyone:
        event = next_frame(ws, "comment.created", timeout=SCHEDULED_TIMEOUT, ticket=number)
        assert event["data"]["comment"] == posted["id"]

    # A UI page: rendered with the hashed static files the image build collects, served
    # by WhiteNoise, under the Content-Security-Policy.
    page = requests.get(f"{web_a.url}/admin/login/", timeout=EVENT_TIMEOUT)
    assert page.status_code == 200
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    stylesheet = re.search(r'href="(/static/admin/css/base\.[0-9a-f]+\.css)"', page.text)
    assert stylesheet is not None, page.text[:2000]
    assert requests.get(f"{web_a.url}{stylesheet.group(1)}", timeout=EVENT_TIMEOUT).ok

    # Kept open for the shutdown: the servers must close them themselves.
    return token, everyone


def stop_gracefully(processes: list[Process], sockets: list[ClientConnection]) -> None:
    """SIGTERM to every process at once (docker compose stop); each exits 0 in time, and
    open websockets are closed by their server with 1012 (service restart)."""
    for process in processes:
        assert process.process is not None
        process.check_running()
        process.process.send_signal(signal.SIGTERM)
    for ws in sockets:
        assert close_code(ws, STOP_TIMEOUT) == 1012
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in processes:
        assert process.process is not None
        try:
            code = process.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            pytest.fail(f"{process.name} still running {STOP_TIMEOUT} s after SIGTERM")
        assert code == 0, f"{process.name} exited with {code}:\n{process.output()}"


def check_logs(processes: list[Process], token: str) -> None:
    """JSON lines from Django, Celery and uvicorn alike; one access line per request (ours);
    no credential anywhere (the sockets' ?token= is redacted)."""
    for process in processes:
        text = process.log.read_text(errors="replace")
        assert token not in text, f"{process.name} logged an access token"
        records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        assert records, f"{process.name} wrote no JSON log line"
        assert not [r for r in records if r["logger"] == "uvicorn.access"]
    requests_logged = [
        json.loads(line)
        for line in processes[0].log.read_text().splitlines()
        if line.startswith("{") and '"enque.access"' in line
    ]
    assert requests_logged
    assert all(r["request_id"] != "-" and "status" in r for r in requests_logged)
