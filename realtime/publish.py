"""Ticket changes → websocket groups, after commit.

``publish`` is a ``tickets.hooks`` listener (subscribed in ``RealtimeConfig.ready``), so it
runs only once the service's transaction has committed, and never for one that rolled
back. It maps a ``TicketChange`` to one event and sends it to the groups that want it:

    ws.<workspace>.tickets              every change in the workspace
    ws.<workspace>.ticket.<number>      the ticket's own subscribers
    ws.<workspace>.agent.<agent>        ticket.assigned: the new (and the previous) assignee

What a client receives is the event, as JSON::

    {"type": "comment.created", "id": "3f2a…", "workspace": 3, "ticket": 12,
     "actor": {"type": "agent", "agent": 7, "customer": null, "automation": null},
     "data": {"comment": 91, "internal": false, "author_type": "agent"},
     "at": "2025-11-25T13:04:00.123456+00:00"}

``ticket`` is the per-workspace number (as in ``/v1/tickets/<number>``); ``id`` is unique
per event, so a socket subscribed to two groups that both carry it delivers it once.

The group message carries the event already serialised (``text``): a thousand sockets
forward one string instead of encoding the same dict a thousand times.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone
from redis.exceptions import RedisError

from realtime import conf, groups
from tickets.hooks import TicketChange

logger = logging.getLogger(__name__)

# The consumer method that forwards an event (Channels maps "realtime.event" to it).
EVENT_MESSAGE_TYPE = "realtime.event"


def is_agents_only(change: TicketChange) -> bool:
    """THE RULE for customer-facing sockets: an internal note — its existence included —
    is for agents only. Every group today is an agent audience (``realtime.groups``); a
    future customer socket must drop events marked ``agents_only`` (the consumer checks the
    flag too) and must never be added to the agent groups."""
    return change.type == "comment.created" and bool(change.data.get("internal"))


def groups_for(change: TicketChange) -> list[str]:
    workspace_id = change.workspace_id
    names = [groups.tickets(workspace_id), groups.ticket(workspace_id, change.ticket_number)]
    if change.type == "ticket.assigned":
        # The new assignee's "assigned to me"; the previous one's list loses the ticket.
        for agent_id in (change.data.get("assignee"), change.data.get("previous")):
            if agent_id:
                names.append(groups.agent(workspace_id, int(agent_id)))
    return list(dict.fromkeys(names))


def make_event(
    *,
    event_type: str,
    workspace_id: int,
    ticket_number: int,
    data: dict[str, Any],
    actor: dict[str, Any] | None = None,
    at: str | None = None,
) -> dict[str, Any]:
    return {
        "type": event_type,
        "id": uuid.uuid4().hex,
        "workspace": workspace_id,
        "ticket": ticket_number,
        "actor": actor,
        "data": data,
        "at": at or timezone.now().isoformat(),
    }


def event_for(change: TicketChange) -> dict[str, Any]:
    return make_event(
        event_type=change.type,
        workspace_id=change.workspace_id,
        ticket_number=change.ticket_number,
        data=change.data,
        actor=change.actor,
        at=change.at,
    )


def group_message(event: dict[str, Any], *, agents_only: bool) -> dict[str, Any]:
    return {
        "type": EVENT_MESSAGE_TYPE,
        "id": event["id"],
        "agents_only": agents_only,
        "text": json.dumps(event, cls=DjangoJSONEncoder, separators=(",", ":")),
    }


async def send_to_groups(group_names: Iterable[str], message: dict[str, Any]) -> None:
    """Send one message to several groups at once, within REALTIME_PUBLISH_TIMEOUT."""
    layer = get_channel_layer()
    if layer is None:
        return
    sends = [layer.group_send(name, message) for name in group_names]
    await asyncio.wait_for(asyncio.gather(*sends), timeout=conf.get("REALTIME_PUBLISH_TIMEOUT"))


async def apublish(change: TicketChange) -> dict[str, Any]:
    """Publish from async code (the benchmark); raises when the channel layer fails."""
    event = event_for(change)
    await send_to_groups(
        groups_for(change), group_message(event, agents_only=is_agents_only(change))
    )
    return event


def publish(change: TicketChange) -> None:
    """The hooks listener. It runs after commit, so a channel layer that is down (Redis
    unreachable, or too slow) is logged and swallowed here: the write has happened and the
    request must still succeed; clients catch up on their next fetch."""
    try:
        async_to_sync(apublish)(change)
    except (RedisError, OSError, TimeoutError, ChannelFull):
        logger.exception(
            "realtime: could not publish %s for ticket #%s of workspace %s",
            change.type,
            change.ticket_number,
            change.workspace_id,
        )
