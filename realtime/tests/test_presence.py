"""Presence: who views or types on a ticket, through sockets and in the store itself."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from realtime import presence
from realtime.tests.conftest import async_test, atoken, open_socket
from tickets.models import Ticket
from workspaces.models import Agent


def names(frame: dict) -> list[tuple[str, str]]:
    assert frame["type"] == "presence.changed"
    return [(v["name"], v["state"]) for v in frame["data"]["viewers"]]


@pytest.mark.django_db(transaction=True)
@async_test
async def test_two_agents_on_one_ticket_see_each_other_and_a_closed_socket_clears(
    alice: Agent, bob: Agent, ticket_a: Ticket
) -> None:
    channel = f"ticket:{ticket_a.number}"
    alice_ws, _ = await open_socket(await atoken(alice))
    bob_ws, _ = await open_socket(await atoken(bob))
    try:
        await alice_ws.subscribe(channel)
        assert names(await alice_ws.receive()) == []  # the snapshot: nobody yet
        await alice_ws.send({"type": "presence", "payload": {"ticket": 1, "state": "viewing"}})
        assert names(await alice_ws.receive()) == [("Alice Admin", "viewing")]

        await bob_ws.subscribe(channel)
        # Bob arrives and sees Alice at once.
        assert names(await bob_ws.receive()) == [("Alice Admin", "viewing")]
        await bob_ws.send({"type": "presence", "payload": {"ticket": 1, "state": "typing"}})
        both = [("Alice Admin", "viewing"), ("Bob Agent", "typing")]
        assert names(await alice_ws.receive()) == both
        assert names(await bob_ws.receive()) == both
        assert await alice_ws.nothing()

        await bob_ws.close()

        assert names(await alice_ws.receive()) == [("Alice Admin", "viewing")]
    finally:
        await alice_ws.close()


@pytest.mark.django_db(transaction=True)
@async_test
async def test_left_removes_the_viewer_and_a_refresh_is_not_broadcast(
    alice: Agent, bob: Agent, ticket_a: Ticket
) -> None:
    alice_ws, _ = await open_socket(await atoken(alice))
    bob_ws, _ = await open_socket(await atoken(bob))
    try:
        await alice_ws.subscribe("presence")  # every ticket of the workspace
        await bob_ws.send({"type": "presence", "payload": {"ticket": 1, "state": "viewing"}})
        frame = await alice_ws.receive()
        assert (frame["ticket"], names(frame)) == (1, [("Bob Agent", "viewing")])

        await bob_ws.send({"type": "presence", "payload": {"ticket": 1, "state": "viewing"}})
        assert await alice_ws.nothing()

        await bob_ws.send({"type": "presence", "payload": {"ticket": 1, "state": "left"}})
        assert names(await alice_ws.receive()) == []
    finally:
        await alice_ws.close()
        await bob_ws.close()


@pytest.mark.django_db(transaction=True)
@async_test
async def test_two_tabs_of_one_agent_stay_present_until_both_leave(
    alice: Agent, bob: Agent, ticket_a: Ticket
) -> None:
    watcher, _ = await open_socket(await atoken(alice))
    tab1, _ = await open_socket(await atoken(bob))
    tab2, _ = await open_socket(await atoken(bob))
    try:
        await watcher.subscribe("presence")
        for tab in (tab1, tab2):
            await tab.send({"type": "presence", "payload": {"ticket": 1, "state": "viewing"}})
            assert names(await watcher.receive()) == [("Bob Agent", "viewing")]

        await tab1.close()
        assert names(await watcher.receive()) == [("Bob Agent", "viewing")]
        await tab2.close()
        assert names(await watcher.receive()) == []
    finally:
        await watcher.close()


@pytest.mark.django_db(transaction=True)
@async_test
async def test_presence_on_another_workspaces_ticket_is_refused(
    alice: Agent, charlie: Agent, ticket_a: Ticket, customer_a
) -> None:
    from channels.db import database_sync_to_async

    from tickets.actors import Actor
    from tickets.services import ticket_create

    second = await database_sync_to_async(ticket_create)(
        workspace=ticket_a.workspace,
        actor=Actor.for_customer(customer_a),
        subject="Only Acme has a #2",
        body_text="...",
        customer=customer_a,
        channel="email",
    )
    watcher, _ = await open_socket(await atoken(alice))
    socket, _ = await open_socket(await atoken(charlie))
    try:
        await watcher.subscribe("presence")
        await socket.send(
            {"type": "presence", "payload": {"ticket": second.number, "state": "viewing"}}
        )

        assert (await socket.receive())["payload"]["code"] == "not_found"
        assert await watcher.nothing()
    finally:
        await watcher.close()
        await socket.close()


@pytest.mark.django_db(transaction=True)
@override_settings(REALTIME_HEARTBEAT_INTERVAL=0.05, REALTIME_PRESENCE_TTL=1)
@async_test
async def test_the_heartbeat_keeps_presence_alive_past_its_ttl(
    alice: Agent, bob: Agent, ticket_a: Ticket
) -> None:
    alice_ws, _ = await open_socket(await atoken(alice))
    bob_ws, _ = await open_socket(await atoken(bob))
    try:
        await bob_ws.send({"type": "presence", "payload": {"ticket": 1, "state": "viewing"}})
        await alice_ws.nothing(1.5)  # longer than the TTL

        await alice_ws.subscribe(f"ticket:{ticket_a.number}")
        assert names(await alice_ws.receive()) == [("Bob Agent", "viewing")]
    finally:
        await alice_ws.close()
        await bob_ws.close()


# --- The store ------------------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> presence.MemoryStore | presence.RedisStore:
    if request.param == "memory":
        return presence.MemoryStore()
    from enque.testing import require_redis

    require_redis()
    return presence.store()


def entry(agent: int, state: str = "viewing") -> str:
    return json.dumps({"agent": agent, "name": f"Agent {agent}", "state": state})


def test_stale_presence_expires(store: presence.MemoryStore | presence.RedisStore) -> None:
    # A process that died without closing its sockets: its entries are never refreshed.
    assert store.apply(1, 7, "dead-socket", entry(5), now=1000.0, ttl=60) == (True, [entry(5)])
    assert store.apply(1, 7, "live-socket", entry(6), now=1030.0, ttl=60) == (
        True,
        [entry(5), entry(6)],
    )

    changed, entries = store.apply(1, 7, "live-socket", entry(6), now=1061.0, ttl=60)

    assert (changed, entries) == (True, [entry(6)])  # the dead one purged: worth a broadcast
    assert store.apply(1, 7, "", "", now=1062.0, ttl=60) == (False, [entry(6)])
    assert store.apply(1, 7, "", "", now=1200.0, ttl=60) == (True, [])


def test_presence_is_per_workspace_and_ticket(
    store: presence.MemoryStore | presence.RedisStore,
) -> None:
    store.apply(1, 7, "a", entry(5), now=1000.0, ttl=60)

    assert store.apply(2, 7, "", "", now=1000.0, ttl=60) == (False, [])
    assert store.apply(1, 8, "", "", now=1000.0, ttl=60) == (False, [])


def test_viewers_have_one_row_per_agent_and_typing_wins() -> None:
    viewers = presence.viewers_of([entry(5), entry(6), entry(5, "typing"), entry(6)])

    assert viewers == [
        {"agent": 5, "name": "Agent 5", "state": "typing"},
        {"agent": 6, "name": "Agent 6", "state": "viewing"},
    ]
