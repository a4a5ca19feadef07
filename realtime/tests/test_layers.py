"""The channel layer: channels-redis with redis-py 8, as configured in settings."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.conf import settings

from enque.testing import require_redis
from realtime.layers import RedisChannelLayer, RedisPubSubChannelLayer
from realtime.tests.conftest import async_test, atoken, open_socket
from tickets.actors import Actor
from tickets.models import Ticket
from tickets.services import comment_create
from workspaces.models import Agent


def test_the_configured_layer_is_the_pub_sub_one() -> None:
    require_redis()
    backend = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    assert backend == "realtime.layers.RedisPubSubChannelLayer"


def pubsub_layer(**config: object) -> tuple[RedisPubSubChannelLayer, str]:
    """A layer on the test Redis with a prefix of its own, and that prefix."""
    prefix = f"enque:test:{uuid.uuid4().hex}:"
    hosts = [{"address": settings.REDIS_URL, "client_name": prefix.replace(":", "-")}]
    return RedisPubSubChannelLayer(hosts=hosts, prefix=prefix, **config), prefix


def subscribers(prefix: str, group: str) -> int:
    client = redis.Redis.from_url(settings.REDIS_URL)
    return dict(client.pubsub_numsub(f"{prefix}__group__{group}"))[
        f"{prefix}__group__{group}".encode()
    ]


@async_test
async def test_a_group_is_one_subscription_per_process_whatever_its_size() -> None:
    require_redis()
    layer, prefix = pubsub_layer()
    channels = [await layer.new_channel() for _ in range(50)]
    await asyncio.gather(*(layer.group_add("inbox", c) for c in channels))
    try:
        assert subscribers(prefix, "inbox") == 1

        await layer.group_send("inbox", {"type": "hello", "n": 1})

        received = await asyncio.wait_for(
            asyncio.gather(*(layer.receive(c) for c in channels)), timeout=5
        )
        assert received == [{"type": "hello", "n": 1}] * 50
    finally:
        await asyncio.gather(*(layer.group_discard("inbox", c) for c in channels))
    # The last member out unsubscribes the process.
    assert subscribers(prefix, "inbox") == 0
    await layer.flush()


@async_test
async def test_a_channel_that_is_not_read_keeps_its_capacity_and_the_others_get_everything() -> (
    None
):
    require_redis()
    layer, _ = pubsub_layer(capacity=3)
    reader, stuck = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("inbox", reader)
    await layer.group_add("inbox", stuck)

    got = []
    for n in range(5):
        await layer.group_send("inbox", {"type": "event", "n": n})
        got.append((await asyncio.wait_for(layer.receive(reader), timeout=5))["n"])

    assert got == [0, 1, 2, 3, 4]
    # One loop fills both queues, in order: the reader has all five, so the stuck channel's
    # queue is final. It kept the first three and dropped the rest.
    kept = [(await layer.receive(stuck))["n"] for _ in range(3)]
    assert kept == [0, 1, 2]
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(stuck), timeout=0.2)
    await layer.flush()


@async_test
async def test_the_subscription_comes_back_after_redis_drops_the_connection() -> None:
    require_redis()
    layer, prefix = pubsub_layer()
    channel = await layer.new_channel()
    await layer.group_add("inbox", channel)
    client = redis.Redis.from_url(settings.REDIS_URL)
    name = prefix.replace(":", "-")
    subscription = [c for c in client.client_list() if c["name"] == name and int(c["sub"])]
    assert len(subscription) == 1

    client.client_kill_filter(_id=subscription[0]["id"])
    assert subscribers(prefix, "inbox") == 0
    # redis-py reconnects on the receive loop's next read and subscribes again.
    for _ in range(100):
        if subscribers(prefix, "inbox") == 1:
            break
        await asyncio.sleep(0.1)
    await layer.group_send("inbox", {"type": "after"})

    assert await asyncio.wait_for(layer.receive(channel), timeout=5) == {"type": "after"}
    await layer.flush()


@async_test
async def test_a_publish_only_event_loop_reaches_members_and_leaves_nothing_behind() -> None:
    # A Celery worker or a sync view publishes through async_to_sync: an event loop of its
    # own that subscribes to nothing and is closed after the send.
    require_redis()
    layer, _ = pubsub_layer()
    channel = await layer.new_channel()
    await layer.group_add("inbox", channel)

    await asyncio.to_thread(async_to_sync(layer.group_send), "inbox", {"type": "from.worker"})

    assert await asyncio.wait_for(layer.receive(channel), timeout=5) == {"type": "from.worker"}
    # Only this loop's layer remains: the publisher's was flushed when its loop closed.
    assert list(layer._layers) == [asyncio.get_running_loop()]
    await layer.flush()


def test_a_burst_past_the_pool_size_waits_instead_of_failing() -> None:
    require_redis()
    layer = RedisChannelLayer(
        hosts=[{"address": settings.REDIS_URL, "max_connections": 2}], prefix="enque:test"
    )

    async def burst() -> list[str]:
        channels = [await layer.new_channel() for _ in range(50)]
        # 50 operations at once through 2 connections (redis-py's own pool raises
        # MaxConnectionsError here).
        await asyncio.gather(*(layer.group_add("burst", c) for c in channels))
        await layer.group_send("burst", {"type": "hello"})
        received = await asyncio.gather(*(layer.receive(c) for c in channels))
        await asyncio.gather(*(layer.group_discard("burst", c) for c in channels))
        await layer.flush()
        return [m["type"] for m in received]

    assert async_to_sync(burst)() == ["hello"] * 50


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@async_test
async def test_a_socket_survives_a_quiet_spell_longer_than_the_redis_read_timeout(
    alice: Agent, bob: Agent, ticket_a: Ticket
) -> None:
    # channels-redis waits for messages with BZPOPMIN(timeout=5 s); redis-py 8's default
    # socket_timeout is 5 s too, so after every quiet 5 s the read raced the reply and the
    # socket holding the process's receive loop crashed ("Timeout reading from ...").
    require_redis()
    socket, _ = await open_socket(await atoken(alice))
    try:
        await socket.subscribe("tickets")
        await asyncio.sleep(11)  # two receive timeouts

        await database_sync_to_async(comment_create)(
            ticket=ticket_a, actor=Actor.for_agent(bob), body_text="Still there?"
        )

        assert (await socket.receive())["type"] == "comment.created"
    finally:
        await socket.close()


def test_reads_outwait_the_blocking_pop_and_the_pool_waits() -> None:
    layer = RedisChannelLayer(hosts=[{"address": "redis://127.0.0.1:6379/0"}])

    pool = layer.create_pool(0)

    assert pool.connection_kwargs["socket_timeout"] > layer.brpop_timeout
    assert pool.max_connections == 200
    assert pool.timeout == 10
