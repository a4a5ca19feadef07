"""publish(): which groups an event goes to, what it says, and what it never does."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.test import override_settings

from realtime import publish as publishing
from tickets import hooks
from tickets.actors import Actor
from tickets.hooks import TicketChange
from tickets.models import Ticket
from tickets.services import comment_create
from workspaces.models import Agent


def change(type_: str, **data: object) -> TicketChange:
    return TicketChange(
        type=type_,
        workspace_id=3,
        ticket_id=40,
        ticket_number=12,
        actor={"type": "agent", "agent": 7, "customer": None, "automation": None},
        data=data,
    )


def test_publish_listens_to_the_ticket_hooks() -> None:
    assert publishing.publish in hooks._listeners


@pytest.mark.parametrize(
    ("event", "groups"),
    [
        (change("ticket.created", comment=1), ["ws.3.tickets", "ws.3.ticket.12"]),
        (change("ticket.updated", changes={}), ["ws.3.tickets", "ws.3.ticket.12"]),
        (change("comment.created", internal=True), ["ws.3.tickets", "ws.3.ticket.12"]),
        (change("ticket.merged", into=41), ["ws.3.tickets", "ws.3.ticket.12"]),
        (
            change("ticket.assigned", assignee=8, previous=9),
            ["ws.3.tickets", "ws.3.ticket.12", "ws.3.agent.8", "ws.3.agent.9"],
        ),
        (
            change("ticket.assigned", assignee=None, previous=9),
            ["ws.3.tickets", "ws.3.ticket.12", "ws.3.agent.9"],
        ),
    ],
)
def test_groups_are_the_workspaces_own(event: TicketChange, groups: list[str]) -> None:
    assert publishing.groups_for(event) == groups


def test_internal_notes_are_marked_for_agents_only() -> None:
    assert publishing.is_agents_only(change("comment.created", internal=True))
    assert not publishing.is_agents_only(change("comment.created", internal=False))
    assert not publishing.is_agents_only(change("ticket.updated", changes={}))


def test_the_event_round_trips_through_json() -> None:
    note = change("comment.created", comment=91, internal=True, author_type="agent")

    message = publishing.group_message(publishing.event_for(note), agents_only=True)

    assert message["type"] == "realtime.event"
    assert message["agents_only"] is True
    event = json.loads(message["text"])
    assert event == {
        "type": "comment.created",
        "id": message["id"],
        "workspace": 3,
        "ticket": 12,
        "actor": note.actor,
        "data": {"comment": 91, "internal": True, "author_type": "agent"},
        "at": note.at,
    }


@pytest.mark.django_db(transaction=True)
def test_a_committed_change_reaches_the_group(alice: Agent, bob: Agent, ticket_a: Ticket) -> None:
    layer = get_channel_layer()

    async def listen() -> tuple[dict[str, Any], int]:
        # One event loop throughout: the pub/sub layer's channels and groups live in the
        # loop (the process) that made them, as a consumer's do.
        channel = await layer.new_channel()
        await layer.group_add(f"ws.{alice.workspace_id}.ticket.{ticket_a.number}", channel)
        comment = await database_sync_to_async(comment_create)(
            ticket=ticket_a, actor=Actor.for_agent(bob), body_text="Done."
        )
        return await asyncio.wait_for(layer.receive(channel), timeout=5), comment.pk

    message, comment_id = async_to_sync(listen)()
    assert json.loads(message["text"])["data"]["comment"] == comment_id


@pytest.mark.django_db(transaction=True)
def test_a_channel_layer_that_is_down_is_logged_and_the_write_stands(
    bob: Agent, ticket_a: Ticket, caplog: pytest.LogCaptureFixture
) -> None:
    dead = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": "unix:///nonexistent/enque/redis.sock"}]},
        }
    }
    with override_settings(CHANNEL_LAYERS=dead), caplog.at_level(logging.ERROR):
        comment = comment_create(ticket=ticket_a, actor=Actor.for_agent(bob), body_text="Hi")

    assert comment.pk is not None
    assert "realtime: could not publish comment.created" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_hanging_channel_layer_does_not_hold_the_request(
    bob: Agent, ticket_a: Ticket, caplog: pytest.LogCaptureFixture
) -> None:
    # A "Redis" that accepts connections and never answers.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        hanging = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [{"address": f"redis://127.0.0.1:{port}"}]},
            }
        }
        started = time.monotonic()
        with override_settings(CHANNEL_LAYERS=hanging, REALTIME_PUBLISH_TIMEOUT=0.3):
            comment_create(ticket=ticket_a, actor=Actor.for_agent(bob), body_text="Hi")

    assert time.monotonic() - started < 5
    assert "realtime: could not publish comment.created" in caplog.text
