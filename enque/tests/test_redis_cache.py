"""enque.redis_cache: Django's Redis cache with one client and pool per process.

Django makes a cache backend per thread and per async context; under ASGI that was a new
connection pool, and a new Redis connection, per request (Django ticket #35651)."""

from __future__ import annotations

import threading
import uuid

from django.conf import settings
from django.core.cache.backends.redis import RedisCache

from enque.redis_cache import SharedClientRedisCache
from enque.testing import require_redis


def backend(cls: type[RedisCache] = SharedClientRedisCache) -> RedisCache:
    """A backend as Django's cache handler makes one for each thread or context."""
    return cls(settings.REDIS_URL, {"KEY_PREFIX": f"test-{uuid.uuid4().hex}"})


def test_backends_of_one_process_share_one_client_and_pool() -> None:
    require_redis()
    first, second = backend(), backend()
    from_a_thread: list[object] = []
    thread = threading.Thread(target=lambda: from_a_thread.append(backend()._cache.get_client()))
    thread.start()
    thread.join()

    client = first._cache.get_client(write=True)

    assert second._cache.get_client() is client
    assert from_a_thread == [client]
    # Django's own backend makes a new client, on a pool of its own, per backend.
    stock = backend(RedisCache)._cache.get_client()
    assert stock is not client
    assert stock.connection_pool is not client.connection_pool


def test_the_shared_client_caches_as_djangos_does() -> None:
    require_redis()
    writer, reader = backend(), backend()
    reader.key_prefix = writer.key_prefix

    writer.set("greeting", {"hello": "world"}, timeout=30)
    assert reader.get("greeting") == {"hello": "world"}
    assert reader.add("counter", 1, timeout=30)
    assert writer.incr("counter") == 2
    assert reader.get_many(["greeting", "nothing"]) == {"greeting": {"hello": "world"}}
    writer.delete("greeting")
    assert reader.get("greeting") is None


def test_other_connection_options_get_a_client_of_their_own() -> None:
    require_redis()
    other = SharedClientRedisCache(settings.REDIS_URL, {"OPTIONS": {"socket_timeout": 5}})

    client = other._cache.get_client()

    assert client is not backend()._cache.get_client()
    assert client.ping()
