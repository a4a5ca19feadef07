"""The private redis-server of the embedded default, on a throwaway socket under /tmp."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from enque import child_processes, embedded_redis


@pytest.fixture
def socket_path() -> Iterator[Path]:
    # A short path: unix socket paths are limited to ~100 bytes, and pytest's tmp_path is long.
    with tempfile.TemporaryDirectory(prefix="eqr-", dir="/tmp") as directory:
        yield Path(directory) / "r" / "redis.sock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still has a pid; it is not running.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z"))


def test_starts_a_server_that_answers_ping_on_the_socket_only(socket_path: Path) -> None:
    handle = embedded_redis.ensure_running(socket_path)
    try:
        assert handle is not None
        client = redis.Redis(unix_socket_path=str(socket_path))
        assert client.ping()
        client.set("k", "v")
        assert client.get("k") == b"v"
        config = client.config_get("*")
        assert config["port"] == "0"  # no TCP listener
        assert config["save"] == ""
        assert config["appendonly"] == "no"
        assert socket_path.stat().st_mode & 0o777 == 0o700
        assert handle.url == f"unix://{socket_path}"
        client.close()
    finally:
        if handle is not None:
            handle.stop()


def test_a_server_that_already_answers_is_left_alone(socket_path: Path) -> None:
    first = embedded_redis.ensure_running(socket_path)
    assert first is not None
    try:
        assert embedded_redis.ensure_running(socket_path) is None
        assert _alive(first.pid)
    finally:
        first.stop()


def test_a_stale_socket_is_replaced_by_a_running_server(socket_path: Path) -> None:
    # What a killed server leaves behind: a socket file nobody listens on.
    socket_path.parent.mkdir(parents=True)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(socket_path))
    stale.close()
    assert socket_path.exists()
    assert not embedded_redis.ping(socket_path)

    handle = embedded_redis.ensure_running(socket_path)
    try:
        assert handle is not None
        assert embedded_redis.ping(socket_path)
    finally:
        if handle is not None:
            handle.stop()


def test_stop_leaves_no_process_and_no_socket(socket_path: Path) -> None:
    handle = embedded_redis.ensure_running(socket_path)
    assert handle is not None
    pid = handle.pid

    handle.stop()
    handle.stop()  # idempotent

    assert not _alive(pid)
    assert not socket_path.exists()
    assert not handle.pidfile.exists()
    assert not embedded_redis.ping(socket_path)


def test_stop_cleans_up_after_a_server_that_was_killed(socket_path: Path) -> None:
    handle = embedded_redis.ensure_running(socket_path)
    assert handle is not None
    handle.process.kill()  # SIGKILL: redis cannot remove its own socket
    handle.process.wait()
    assert socket_path.exists()

    handle.stop()

    assert not socket_path.exists()


def test_starting_twice_at_once_yields_one_server(socket_path: Path) -> None:
    # Two processes racing to start the server (two terminals at once).
    code = (
        "import sys; from pathlib import Path; from enque import embedded_redis as e; "
        "h = e.ensure_running(Path(sys.argv[1])); print('started' if h else 'reused', flush=True);"
        "sys.stdin.read(); h and h.stop()"
    )
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(socket_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        for _ in range(2)
    ]
    try:
        outcomes = sorted(racer.stdout.readline().strip() for racer in racers)  # type: ignore[union-attr]
        assert outcomes == ["reused", "started"]
    finally:
        for racer in racers:
            racer.communicate("", timeout=20)


def test_the_server_dies_with_the_process_that_started_it(socket_path: Path) -> None:
    # Even a parent killed with SIGKILL leaves no redis-server behind (Linux: PDEATHSIG).
    if child_processes._libc is None:
        pytest.skip("parent-death signal needs Linux")
    code = (
        "import sys; from pathlib import Path; from enque import embedded_redis as e; "
        "h = e.ensure_running(Path(sys.argv[1])); print(h.pid, flush=True); sys.stdin.read()"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code, str(socket_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    redis_pid = int(parent.stdout.readline())  # type: ignore[union-attr]
    assert _alive(redis_pid)

    parent.kill()
    parent.wait()

    deadline = time.monotonic() + 10
    while _alive(redis_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(redis_pid)


def test_a_socket_path_too_long_for_unix_sockets_is_refused_clearly() -> None:
    too_long = Path("/tmp/" + "x" * 120) / "redis.sock"
    with pytest.raises(embedded_redis.EmbeddedRedisError, match="ENQUE_VAR_DIR"):
        embedded_redis.ensure_running(too_long)
    assert not too_long.parent.exists()
