# --- Test-session services (enque/testing.py) ------------------------------------------
# The session's own embedded Redis (settings: var/redis/test-<pid>/, apart from `make run`'s
# and any other test run's) runs for the whole session; tests marked postgres_only skip on
# SQLite (fail under ENQUE_REQUIRE_SERVICES=1); the cache starts empty for every test.

import contextlib

import pytest
import redis
from django.conf import settings
from django.core.cache import cache

from enque import testing


def pytest_report_header(config: pytest.Config) -> str:
    redis_where = settings.REDIS_MODE
    if settings.REDIS_MODE == "embedded":
        redis_where += f" ({settings.EMBEDDED_REDIS_SOCKET})"
    return (
        f"enque: database={settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]} "
        f"redis={redis_where} require_services={settings.ENQUE_REQUIRE_SERVICES}"
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    testing.start_session_services()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    testing.stop_session_services()


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres_only"):
        testing.require_postgres()
    if item.get_closest_marker("redis"):
        testing.require_redis()


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    # One FLUSHDB on the test Redis (or a dict clear in memory mode): rate-limit counters and
    # cached values never leak from one test into the next. A Redis that is down is left to
    # the tests that need it (enque.testing.require_redis).
    with contextlib.suppress(redis.ConnectionError):
        cache.clear()


# --- Shared fixtures --------------------------------------------------------------------

pytest_plugins = ["enque.fixtures"]
