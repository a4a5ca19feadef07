"""Test-suite support: services a test needs, and what happens when they are missing.

A test that needs a service it cannot find is skipped with its reason, except when
``ENQUE_REQUIRE_SERVICES=1`` (CI), where that is a failure: CI must never go green by
skipping the PostgreSQL or Redis tests.

    from enque.testing import postgres_only, require_service

    @postgres_only
    @pytest.mark.django_db(transaction=True)
    def test_numbers_never_collide(): ...

    def test_publish_reaches_redis():
        require_service("redis", redis_available(), "no Redis at REDIS_URL")
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from enque import embedded_redis

# Concurrency tests (numbering, claiming work, dedupe races) need PostgreSQL: on SQLite
# select_for_update does nothing. Handled in conftest.py's pytest_runtest_setup.
postgres_only = pytest.mark.postgres_only


def require_service(name: str, available: bool, reason: str) -> None:
    """Skip the current test when ``available`` is false; fail it if services are required."""
    if available:
        return
    _missing(name, reason)


def _missing(name: str, reason: str) -> NoReturn:
    if settings.ENQUE_REQUIRE_SERVICES:
        pytest.fail(
            f"{name} is required (ENQUE_REQUIRE_SERVICES is set) but unavailable: {reason}",
            pytrace=False,
        )
    pytest.skip(reason)


def require_postgres() -> None:
    """For use inside a test or fixture; the ``postgres_only`` marker does the same."""
    require_service(
        "postgresql",
        settings.IS_POSTGRES,
        "needs PostgreSQL (set DATABASE_URL); SQLite ignores select_for_update",
    )


def redis_available() -> bool:
    """True when the Redis of settings.REDIS_URL answers PING (false in REDIS_URL=memory)."""
    if settings.REDIS_MODE == "memory":
        return False
    if settings.REDIS_MODE == "embedded":
        return embedded_redis.ping(settings.EMBEDDED_REDIS_SOCKET)
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=1,
        socket_connect_timeout=1,
        retry=Retry(NoBackoff(), 0),  # a probe answers at once, without redis-py's retries
    )
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def require_redis() -> None:
    require_service("redis", redis_available(), f"needs Redis; none answers at {_redis_where()}")


def _redis_where() -> str:
    if settings.REDIS_MODE == "memory":
        return "REDIS_URL=memory"
    return settings.REDIS_URL


# --- Session hooks (called from the root conftest.py) ---------------------------------

_session_redis: embedded_redis.EmbeddedRedis | None = None


def start_session_services() -> None:
    """Start this test session's own embedded Redis (settings: var/redis/test-<pid>/)."""
    global _session_redis
    if settings.REDIS_MODE != "embedded":
        return
    _remove_dead_sessions(settings.EMBEDDED_REDIS_SOCKET.parent.parent)
    try:
        _session_redis = embedded_redis.ensure_running(settings.EMBEDDED_REDIS_SOCKET)
    except embedded_redis.EmbeddedRedisError as exc:
        raise pytest.UsageError(str(exc)) from exc


def stop_session_services() -> None:
    global _session_redis
    if _session_redis is not None:
        _session_redis.stop()
        _session_redis = None
        shutil.rmtree(settings.EMBEDDED_REDIS_SOCKET.parent, ignore_errors=True)


def _remove_dead_sessions(redis_dir: Path) -> None:
    """Delete the test-<pid>/ directories (log, lock) of sessions that were killed."""
    for directory in redis_dir.glob("test-*"):
        pid = directory.name.removeprefix("test-")
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(directory, ignore_errors=True)
        except PermissionError:
            pass  # alive, someone else's


# --- S3: moto's server, for the storage tests and the production smoke test -----------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class S3Server:
    """moto's S3 server on loopback: a real HTTP endpoint speaking the S3 API, so boto3,
    django-storages, signed URLs and plain HTTP clients all talk to it as to AWS."""

    endpoint_url: str
    region: str = "us-east-1"
    access_key: str = "testing"
    secret_key: str = "testing"  # noqa: S105 - moto takes any credentials

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def create_bucket(self, prefix: str = "enque-test") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def storage_options(self, bucket: str, *, expire: int = 300) -> dict[str, Any]:
        """``STORAGES["default"]["OPTIONS"]`` as settings build them for this bucket."""
        return {
            "bucket_name": bucket,
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "signature_version": "s3v4",
            "addressing_style": None,
            "default_acl": "private",
            "querystring_auth": True,
            "querystring_expire": expire,
            "file_overwrite": False,
        }

    def environment(self, bucket: str) -> dict[str, str]:
        """The variables that point a server process's settings at this bucket."""
        return {
            "AWS_STORAGE_BUCKET_NAME": bucket,
            "AWS_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_S3_REGION_NAME": self.region,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }


@contextlib.contextmanager
def moto_s3_server() -> Iterator[S3Server]:
    """Run moto's S3 server in a thread of this process for the duration."""
    from moto.server import ThreadedMotoServer

    # Its request log (werkzeug) would add a line per S3 call to every failing test's output.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(endpoint_url=f"http://127.0.0.1:{port}")
    finally:
        server.stop()
