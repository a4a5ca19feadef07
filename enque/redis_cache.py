"""Django's Redis cache with one redis-py client, and one connection pool, per process.

Django keeps a cache backend per thread and per async context (``caches`` is an asgiref
``Local``), and each backend makes its own connection pools. Under the ASGI server every
request runs in a new context, so every request opened a new Redis connection (a connect,
a ``SELECT``, and a socket left to close) before its first cache call: Django ticket
#35651. Here the pools are shared by every backend of the process with the same server and
options.

Django's ``RedisCacheClient.get_client`` also builds a new ``redis.Redis`` for every cache
call, copying redis-py's table of ~170 response callbacks: about 1 ms of CPU per API
request (the rate-limit counters, the signed-out-session check). One client per pool is
enough: a ``redis.Redis`` takes a connection from its pool per command, so threads may
share it, and its pool notices a fork and starts afresh in the child.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

_shared_clients: dict[tuple[Any, ...], Any] = {}
_shared_clients_lock = threading.Lock()


class SharedClientRedisCacheClient(RedisCacheClient):
    def __init__(self, servers: list[str], **options: Any) -> None:
        super().__init__(servers, **options)
        # Per server: what a process-wide client is shared under (same server, same pool
        # class and options). Built once per backend, not per cache call.
        options_key = tuple(
            sorted((name, repr(value)) for name, value in self._pool_options.items())
        )
        self._shared_keys = [
            (self._pool_class, self._client, server, options_key) for server in servers
        ]

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)
        shared_key = self._shared_keys[index]
        client = _shared_clients.get(shared_key)
        if client is None:
            with _shared_clients_lock:
                client = _shared_clients.get(shared_key)
                if client is None:
                    pool = self._pool_class.from_url(self._servers[index], **self._pool_options)
                    client = _shared_clients[shared_key] = self._client(connection_pool=pool)
        return client


class SharedClientRedisCache(RedisCache):
    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedClientRedisCacheClient
