"""The channel layer: channels-redis's pub/sub layer, fitted to redis-py 8 and bounded.

    CHANNEL_LAYERS = {"default": {
        "BACKEND": "realtime.layers.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [{"address": REDIS_URL}], "prefix": "enque:asgi"},
    }}

**Why pub/sub.** A ``group_send`` is one ``PUBLISH``; every server process with a member of
the group is subscribed to it once and hands the message to its own member channels in
memory. With channels-redis's core layer, one event to the 1,000 sockets of a workspace's
``tickets`` group was a Lua script pushing 1,000 copies onto 1,000 Redis lists, then 1,000
pops by the server process: p99 183 ms idle, frames lost under load (issue #9). The Redis
work per event is now one message per subscribed process, whatever the group's size; in
the process, the message is decoded once for all its member channels (upstream decodes it
in every member's ``receive``).

**Trade-offs, and what covers them.**

- *At-most-once to a process that is momentarily disconnected.* Redis keeps nothing for a
  subscriber: events published while a process's subscription connection is down (a Redis
  restart, a network blip, Redis closing a subscriber past ``client-output-buffer-limit
  pubsub``) never reach its sockets. redis-py reconnects on the next read and subscribes
  again to every channel and group (``PubSub.on_connect``); the reconnect is logged here.
  The sockets stay open meanwhile, so a client does not know it missed something. (The
  core layer loses them too when Redis itself restarts: group memberships and queued
  messages live in Redis.)
- *Group membership is per process, in memory.* Nothing to expire (the core layer's
  ``group_expiry``), nothing left behind by a process that dies: Redis drops its
  subscriptions with its connection. ``group_add`` only accepts a channel of this process
  (``new_channel``), which is how every consumer joins groups.
- *A slow socket.* Each channel's queue holds ``capacity`` messages (100, as the core
  layer's per-channel list); past it the newest message is dropped for that channel alone
  and a warning logged, as the core layer's ``group_send`` skips a full channel. The
  upstream queue is unbounded: a socket whose client stopped reading would hold every
  later event in the server's memory.
- *Publish-only processes* (Celery workers, management commands) need no subscription:
  ``async_to_sync`` gives each publish an event loop of its own, whose layer opens a
  connection, sends ``PUBLISH`` and is flushed when the loop closes, as with the core
  layer. (A sync view under the ASGI server publishes on the server's loop and layer.)
- *A new channel is a subscription* until its receiver is cancelled (how a consumer ends)
  or its loop closes. Code that makes a channel outside a consumer runs on a loop of its
  own: ``/readyz`` (``enque/health.py``).

**redis-py 8.** The core layer needed a read timeout longer than its ``BZPOPMIN`` and a
pool that waits instead of raising past its size (``RedisChannelLayer`` below, kept for
hosts that configure it). Neither bites here: the subscription's reads pass their own
0.1 s timeout (``get_message(timeout=0.1)``), ``PUBLISH`` answers at once within redis-py's
5 s default, and a process's publishes go one at a time through one connection. The same
waiting pool is used anyway, so a setting copied from the core layer behaves the same.

Any of these can still be set per host (``{"address": ..., "max_connections": 500}``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels_redis import core, pubsub
from channels_redis.utils import _wrap_close, decode_hosts
from redis import asyncio as aioredis

logger = logging.getLogger(__name__)

# Per process and event loop; a Redis server accepts 10,000 clients by default.
DEFAULT_MAX_CONNECTIONS = 200
# Seconds an operation waits for a free connection before failing.
DEFAULT_POOL_TIMEOUT = 10
DEFAULT_CONNECT_TIMEOUT = 5
# Added to brpop_timeout: how late a blocking pop's reply may be before the read fails.
READ_MARGIN = 10
# Messages waiting per channel (socket) before newer ones are dropped for it.
DEFAULT_CAPACITY = 100


def create_pool(host: dict[str, Any], **defaults: Any) -> Any:
    """A waiting connection pool for one ``hosts`` entry; sentinel entries keep
    channels-redis's own pool."""
    host = dict(host)
    if "address" not in host:
        return None
    address = host.pop("address")
    for key, value in {
        "socket_connect_timeout": DEFAULT_CONNECT_TIMEOUT,
        "max_connections": DEFAULT_MAX_CONNECTIONS,
        "timeout": DEFAULT_POOL_TIMEOUT,
        **defaults,
    }.items():
        host.setdefault(key, value)
    return aioredis.BlockingConnectionPool.from_url(address, **host)


class RedisChannelLayer(core.RedisChannelLayer):
    """channels-redis's core layer (one Redis list per channel), fitted to redis-py 8:
    reads that outwait ``BZPOPMIN`` (its 5 s default raced the 5 s pop: the receive loop
    crashed after every quiet spell), and a pool that waits instead of raising "Too many
    connections" when every socket of a restarted server reconnects at once."""

    def create_pool(self, index: int) -> Any:
        pool = create_pool(self.hosts[index], socket_timeout=self.brpop_timeout + READ_MARGIN)
        return pool if pool is not None else super().create_pool(index)


class ChannelQueue(asyncio.Queue[dict[str, Any]]):
    """A channel's waiting messages; counts what it dropped when full."""

    dropped = 0


class _Shard(pubsub.RedisSingleShardConnection):
    channel_layer: _LoopLayer
    # The subscription connection whose reconnects are logged.
    _watched: Any = None

    def _ensure_redis(self) -> None:
        if self._redis is None:
            pool = create_pool(self.host)
            if pool is None:
                super()._ensure_redis()
            else:
                self._redis = aioredis.Redis(connection_pool=pool)
                self._pubsub = self._redis.pubsub()
            self._watched = None

    async def subscribe(self, channel: str) -> None:
        await super().subscribe(channel)
        self._watch_reconnects()

    async def unsubscribe(self, channel: str) -> None:
        async with self._lock:
            layer = self.channel_layer
            # A channel or group that gained a local member again while this waited for
            # the lock stays subscribed.
            if channel in layer.channels or channel in layer.groups:
                return
            if channel in self._subscribed_to:
                self._ensure_redis()
                self._ensure_receiver()
                await self._pubsub.unsubscribe(channel)
                self._subscribed_to.remove(channel)

    def _watch_reconnects(self) -> None:
        connection = self._pubsub.connection if self._pubsub is not None else None
        if connection is not None and connection is not self._watched:
            # Registered once the connection is up: every later call is a reconnect.
            self._watched = connection
            connection.register_connect_callback(self._on_reconnect)

    async def _on_reconnect(self, connection: Any) -> None:
        # PubSub.on_connect (registered before this) has subscribed again to every
        # channel and group.
        logger.warning(
            "realtime: channel layer subscription reconnected; events published while it "
            "was down were not delivered to this process's %d channels and groups",
            len(self._subscribed_to),
        )

    def _receive_message(self, message: dict[str, Any] | None) -> None:
        if message is None:
            return
        name = message["channel"]
        if isinstance(name, bytes):
            name = name.decode()
        layer = self.channel_layer
        if name in layer.channels:
            targets: Any = (name,)
        else:
            targets = layer.groups.get(name, ())
        if not targets:
            return
        # Decoded once for every member, not once per member's receive; each gets its own
        # (shallow) copy, as each got its own decoding before.
        decoded = layer.channel_layer.deserialize(message["data"])
        for channel in targets:
            queue = layer.channels.get(channel)
            if queue is None:
                continue
            try:
                queue.put_nowait(dict(decoded))
            except asyncio.QueueFull:
                queue.dropped += 1
                if queue.dropped == 1:
                    logger.warning(
                        "realtime: channel %s is full (%d messages, its socket is not "
                        "reading); dropping messages for it",
                        channel,
                        queue.maxsize,
                    )


class _LoopLayer(pubsub.RedisPubSubLoopLayer):
    channels: dict[str, ChannelQueue]

    def __init__(self, hosts: Any = None, *, capacity: int = DEFAULT_CAPACITY, **kwargs: Any):
        super().__init__(hosts, **kwargs)
        self.capacity = capacity
        self._shards = [_Shard(host, self) for host in decode_hosts(hosts)]

    async def _subscribe_to_channel(self, channel: str) -> None:
        self.channels[channel] = ChannelQueue(maxsize=self.capacity)
        await self._get_shard(channel).subscribe(channel)

    async def receive(self, channel: str) -> dict[str, Any]:
        # The queues hold decoded messages (_Shard._receive_message); the rest is upstream's.
        if channel not in self.channels:
            await self._subscribe_to_channel(channel)
        queue = self.channels[channel]
        try:
            return await queue.get()
        except (asyncio.CancelledError, TimeoutError, GeneratorExit):
            # Channels cancels a consumer's receive when the consumer ends: the channel
            # goes with it.
            if self.channels.get(channel) is queue:
                del self.channels[channel]
                try:
                    await self._get_shard(channel).unsubscribe(channel)
                except BaseException:
                    logger.exception("realtime: could not unsubscribe channel %s", channel)
            raise


class RedisPubSubChannelLayer(pubsub.RedisPubSubChannelLayer):
    """channels-redis's pub/sub layer with a bounded queue per channel, a logged
    reconnect, and the connection pool of ``create_pool`` (module docstring)."""

    def __init__(self, *args: Any, capacity: int = DEFAULT_CAPACITY, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.capacity = capacity

    def _get_layer(self) -> _LoopLayer:
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = _LoopLayer(
                *self._args, capacity=self.capacity, **self._kwargs, channel_layer=self
            )
            self._layers[loop] = layer
            # Closing the loop (async_to_sync's, in a publish-only process) flushes the
            # loop's layer and its connections.
            _wrap_close(self, loop)
        return layer
