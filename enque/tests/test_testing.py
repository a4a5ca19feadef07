"""Missing services skip a test, except under ENQUE_REQUIRE_SERVICES (CI), where they fail it."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache

from enque import testing


def test_an_available_service_neither_skips_nor_fails() -> None:
    testing.require_service("redis", True, "unused")


def test_a_missing_service_skips_with_its_reason(settings) -> None:
    settings.ENQUE_REQUIRE_SERVICES = False
    with pytest.raises(pytest.skip.Exception, match="no Redis here"):
        testing.require_service("redis", False, "no Redis here")


def test_a_missing_service_fails_when_services_are_required(settings) -> None:
    settings.ENQUE_REQUIRE_SERVICES = True
    with pytest.raises(pytest.fail.Exception, match=r"redis is required.*no Redis here"):
        testing.require_service("redis", False, "no Redis here")


def test_postgres_only_skips_on_sqlite_and_fails_when_services_are_required(settings) -> None:
    settings.IS_POSTGRES = False
    settings.ENQUE_REQUIRE_SERVICES = False
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL"):
        testing.require_postgres()
    settings.ENQUE_REQUIRE_SERVICES = True
    with pytest.raises(pytest.fail.Exception, match="postgresql is required"):
        testing.require_postgres()
    settings.IS_POSTGRES = True
    testing.require_postgres()


@testing.postgres_only
def test_the_postgres_only_marker_lets_the_test_run_only_on_postgresql() -> None:
    assert django_settings.IS_POSTGRES


def test_the_session_redis_answers_unless_in_memory_mode() -> None:
    if django_settings.REDIS_MODE == "memory":
        assert not testing.redis_available()
    else:
        assert testing.redis_available()


def test_redis_is_unavailable_at_an_address_where_nothing_listens(settings) -> None:
    settings.REDIS_MODE = "external"
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # the discard port: nothing answers
    assert not testing.redis_available()


@pytest.mark.parametrize("turn", ["first", "second"])
def test_every_test_starts_with_an_empty_cache(turn: str) -> None:
    assert cache.get("left-by-the-previous-test") is None
    cache.set("left-by-the-previous-test", turn, timeout=60)


@pytest.mark.redis
def test_the_redis_marker_lets_the_test_run_only_with_redis() -> None:
    assert testing.redis_available()
