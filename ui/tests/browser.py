"""Browser-test support: Debian's Chromium driven by Playwright, screenshots, and a real
ASGI server (uvicorn) for the tests that need the websocket.

Playwright's browser is never downloaded: the tests launch ``/usr/bin/chromium``. Without it
they skip with the reason — except under ``ENQUE_REQUIRE_SERVICES=1`` (CI), where they fail.

``live_server`` (pytest-django) is a WSGI server in a thread: enough for page flows. Live
updates need Channels, so ``AsgiServer`` runs ``uvicorn enque.asgi:application`` in a
subprocess that sees this test's data: on PostgreSQL the test database itself (the tests are
transactional, so rows are committed); on SQLite a copy of the in-memory test database made
with SQLite's backup API. It shares the session's Redis (channel layer and presence) and this
process's secrets, so tokens issued here are valid there.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from django.conf import settings
from django.db import connection
from playwright.sync_api import Page

from tickets import hooks

CHROMIUM = Path(os.environ.get("ENQUE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"
# Long enough for a loaded CI machine, short enough that a broken flow fails fast.
TIMEOUT_MS = 15_000
SERVER_START_TIMEOUT = 60.0


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    # Toasts are transient: they would cover the page in a still picture.
    page.evaluate("document.querySelectorAll('#toasts .toast').forEach((t) => t.remove())")
    # caret="initial": no style injected to hide the caret (the CSP would refuse it).
    page.screenshot(path=str(path), full_page=full_page, caret="initial")
    return path


def sign_in(page: Page, base_url: str, email: str, password: str) -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/")


@contextmanager
def ticket_hooks_muted() -> Iterator[None]:
    """Build test data without the on-commit listeners (realtime publish, automations).

    Browser tests build their data on the thread where Playwright's event loop runs, where
    the realtime publisher's ``async_to_sync`` cannot; and nobody is listening yet anyway.
    """
    listeners = list(hooks._listeners)
    for listener in listeners:
        hooks.unsubscribe(listener)
    try:
        yield
    finally:
        for listener in listeners:
            hooks.subscribe(listener)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class AsgiServer:
    """uvicorn serving this test's data (see the module docstring)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.log = workdir / "uvicorn.log"
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "REDIS_URL", "TEST_DATABASE_NAME")
        }
        env.update(
            DJANGO_SETTINGS_MODULE="enque.settings",
            ENQUE_VAR_DIR=str(workdir),
            SECRET_KEY=settings.SECRET_KEY,
            JWT_SECRET=settings.JWT_SECRET,
            DATABASE_ENCRYPTION_KEY=settings.DATABASE_ENCRYPTION_KEY,
            REDIS_URL="memory" if settings.REDIS_MODE == "memory" else settings.REDIS_URL,
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
            target = sqlite3.connect(workdir / "enque.sqlite3")
            try:
                connection.connection.backup(target)
            finally:
                target.close()
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "uvicorn", "enque.asgi:application",
                    "--host", "127.0.0.1", "--port", str(self.port),
                    "--lifespan", "off", "--log-level", "warning",
                ],
                cwd=settings.BASE_DIR,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"uvicorn exited with {self.process.returncode}:\n{self.output()}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        pytest.fail(f"uvicorn did not answer /healthz in time:\n{self.output()}")

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
