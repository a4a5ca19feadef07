"""The channel layer: channels-redis with redis-py 8, as configured in settings."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.conf import settings

from enque.testing import require_redis
from realtime.layers import RedisChannelLayer
from realtime.tests.conftest import async_test, atoken, open_socket
from tickets.actors import Actor
from tickets.models import Ticket
from tickets.services import comment_create
from workspaces.models import Agent


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
