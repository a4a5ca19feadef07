"""`manage.py serve` end to end: up, serving, and gone after one SIGINT.

Always on the embedded defaults in a throwaway ENQUE_VAR_DIR: this must never migrate or seed
the database a developer's DATABASE_URL points at.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """Every running process whose parent chain leads to ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        state, ppid = fields[0], int(fields[1])
        if state != "Z" and ppid == pid:
            found.append(int(entry.name))
            found.extend(_descendants(int(entry.name)))
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_serve_starts_everything_and_one_sigint_stops_everything() -> None:
    if "seed_demo" not in get_commands():
        pytest.skip("the seed_demo command (which serve runs) is not written yet")
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="eqserve-", dir="/tmp") as var_dir:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
        }
        env.update(
            ENQUE_VAR_DIR=var_dir, HOST="127.0.0.1", PORT=str(port), ENVIRONMENT="development"
        )
        serve = subprocess.Popen(
            [sys.executable, "manage.py", "serve"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        output: list[str] = []
        banner = threading.Event()

        def read() -> None:
            for line in serve.stdout:  # type: ignore[union-attr]
                output.append(line)
                if "Enque is running at" in line:
                    banner.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + 90
            while not banner.wait(0.5):
                assert serve.poll() is None, "serve exited early:\n" + "".join(output[-60:])
                assert time.monotonic() < deadline, "no banner in 90 s:\n" + "".join(output[-60:])
            url = f"http://127.0.0.1:{port}"
            with urllib.request.urlopen(url + "/admin/login/", timeout=10) as response:
                assert response.status == 200
            with urllib.request.urlopen(url + "/readyz", timeout=10) as response:
                assert response.status == 200
            children = _descendants(serve.pid)
            # redis-server, uvicorn, celery worker, celery beat (and their own children).
            assert len(children) >= 4, "".join(output[-40:])

            serve.send_signal(signal.SIGINT)
            assert serve.wait(timeout=30) == 0, "".join(output[-40:])
        finally:
            if serve.poll() is None:
                serve.kill()
                serve.wait()
            reader.join(timeout=5)

        survivors = [pid for pid in children if _running(pid)]
        assert not survivors, f"still running after SIGINT: {survivors}"
        assert not (Path(var_dir) / "redis" / "redis.sock").exists()
        assert "All stopped." in "".join(output)
