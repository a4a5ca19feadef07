"""The channel layer: channels-redis, with its Redis connections configured for redis-py 8.

Two defaults of redis-py 8 break channels-redis 4.3, and this subclass overrides both:

- **socket_timeout = 5 s.** channels-redis waits for a process's messages with
  ``BZPOPMIN key 5`` (``brpop_timeout``): after every quiet five seconds the server's empty
  reply raced the client's 5 s read timeout, and when the timeout won, the consumer holding
  the process's receive loop crashed ("Timeout reading from ...") and its socket dropped
  without a close frame. Reads now wait ``brpop_timeout`` + 10 s; a dead Redis is still
  noticed within seconds by the connect timeout and by publish's own deadline.
- **max_connections = 100, raising past it.** Every group_add / group_send / send holds a
  connection for its round trip, so 100 sockets connecting at once (a server restart:
  every browser reconnects) failed handshakes with "Too many connections". A
  ``BlockingConnectionPool`` bounds the connections the same way but makes the next
  operation wait for a free one (``timeout`` seconds at most).

    CHANNEL_LAYERS = {"default": {
        "BACKEND": "realtime.layers.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": REDIS_URL}], "prefix": "enque:asgi"},
    }}

Any of these can still be set per host (``{"address": ..., "max_connections": 500}``).
"""

from __future__ import annotations

from typing import Any

from channels_redis import core
from redis import asyncio as aioredis

# Per process and event loop; a Redis server accepts 10,000 clients by default.
DEFAULT_MAX_CONNECTIONS = 200
# Seconds an operation waits for a free connection before failing.
DEFAULT_POOL_TIMEOUT = 10
DEFAULT_CONNECT_TIMEOUT = 5
# Added to brpop_timeout: how late a blocking pop's reply may be before the read fails.
READ_MARGIN = 10


class RedisChannelLayer(core.RedisChannelLayer):
    def create_pool(self, index: int) -> Any:
        host = dict(self.hosts[index])
        if "address" not in host:
            # Sentinel hosts: channels-redis's own pool.
            return super().create_pool(index)
        address = host.pop("address")
        host.setdefault("socket_timeout", self.brpop_timeout + READ_MARGIN)
        host.setdefault("socket_connect_timeout", DEFAULT_CONNECT_TIMEOUT)
        host.setdefault("max_connections", DEFAULT_MAX_CONNECTIONS)
        host.setdefault("timeout", DEFAULT_POOL_TIMEOUT)
        return aioredis.BlockingConnectionPool.from_url(address, **host)
