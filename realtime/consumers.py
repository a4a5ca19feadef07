"""The realtime websocket: ``/realtime`` and ``/ws/realtime``.

Handshake: authenticated by ``realtime.auth`` (``?token=<access JWT>`` or the UI session
cookie). Refused credentials are answered by accepting and closing at once with 4401 (the
only way a websocket server can give a reason), before anything else is sent. On success
the first frame is ``{"type": "welcome", "payload": {"agent", "workspace", ...}}``.

Client → server, JSON text frames (an optional ``"id"`` is echoed as ``"ref"``)::

    {"type": "subscribe",   "payload": {"channel": "tickets" | "ticket:<number>"
                                                   | "agent:me" | "presence"}}
    {"type": "unsubscribe", "payload": {"channel": ...}}
    {"type": "ping"}
    {"type": "presence",    "payload": {"ticket": <number>,
                                        "state": "viewing" | "typing" | "left"}}

Server → client: ``subscribed`` / ``unsubscribed`` {channel}, ``pong``, the events of
``realtime.publish`` ({type, id, workspace, ticket, actor, data, at}), ``presence.changed``
(data: {ticket, viewers: [{agent, name, state}]}; sent to ``ticket:<n>`` and ``presence``
subscribers, and to a new ``ticket:<n>`` subscriber as a snapshot) and
``{"type": "error", "payload": {"code", "message"}}``. An error frame never subscribes
anything and never closes the socket, except:

    4401  bad, expired or missing credentials (handshake), or, later, the token expired,
          the agent was deactivated or the session signed out
    4408  idle: nothing received for REALTIME_IDLE_TIMEOUT (clients ping every 30 s)
    4429  persistent flooding past the per-connection rate limit
    1009  a frame past REALTIME_HARD_MAX_MESSAGE_BYTES

A consumer authenticates, checks membership, joins groups and forwards events — nothing
more (STYLE.md); it writes nothing but presence.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import DatabaseError
from redis.exceptions import RedisError

from realtime import auth, conf, groups, presence
from realtime.auth import Identity
from realtime.publish import EVENT_MESSAGE_TYPE, group_message, make_event, send_to_groups
from tickets.models import Ticket

logger = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_IDLE = 4408
CLOSE_RATE_LIMITED = 4429
CLOSE_TOO_BIG = 1009

TICKET_CHANNEL = re.compile(r"ticket:([1-9][0-9]{0,9})")
MAX_TICKET_NUMBER = 2**31 - 1
MAX_CHANNEL_LENGTH = 64
# Events remembered per socket to drop the second copy of one that reached it through two
# groups (subscribed to both "tickets" and "ticket:12").
RECENT_EVENTS = 256


class MessageRateLimiter:
    """A token bucket (``burst`` messages, refilled at ``rate`` per second), plus a count of
    refusals in the current ``window``: ``strikes`` of them mean abuse."""

    OK, LIMITED, ABUSIVE = "ok", "limited", "abusive"

    def __init__(self, *, rate: float, burst: int, strikes: int, window: float) -> None:
        self.rate, self.burst, self.strikes, self.window = rate, burst, strikes, window
        self.tokens = float(burst)
        self.updated = time.monotonic()
        self.window_start = self.updated
        self.refused = 0

    def hit(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return self.OK
        if now - self.window_start > self.window:
            self.window_start, self.refused = now, 0
        self.refused += 1
        return self.ABUSIVE if self.refused >= self.strikes else self.LIMITED


class ProtocolError(Exception):
    """A client mistake, answered with an error frame."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@database_sync_to_async
def ticket_exists(workspace_id: int, number: int) -> bool:
    # Scoped to the socket's workspace: another workspace's ticket and a missing one are
    # the same "not found". Deleted tickets are gone for subscribers too.
    return (
        Ticket.objects.for_workspace(workspace_id)
        .filter(number=number, deleted_at__isnull=True)
        .exists()
    )


class RealtimeConsumer(AsyncWebsocketConsumer):
    identity: Identity | None = None

    # --- connection ---------------------------------------------------------------------

    async def connect(self) -> None:
        self.closing = False
        self.heartbeat: asyncio.Task[None] | None = None
        # channel name ("tickets", "ticket:12", ...) → group
        self.subscriptions: dict[str, str] = {}
        # tickets this socket has presence on → its state there
        self.presence_states: dict[int, str] = {}
        self.presence_lock = asyncio.Lock()
        # ticket numbers already checked to be in the workspace
        self.known_tickets: set[int] = set()
        self.recent: deque[str] = deque(maxlen=RECENT_EVENTS)
        self.limiter = MessageRateLimiter(
            rate=conf.get("REALTIME_MESSAGE_RATE"),
            burst=conf.get("REALTIME_MESSAGE_BURST"),
            strikes=conf.get("REALTIME_ABUSE_STRIKES"),
            window=conf.get("REALTIME_ABUSE_WINDOW"),
        )
        self.last_received = time.monotonic()
        self.next_check = self.last_received + conf.get("REALTIME_REVALIDATE_INTERVAL")
        self.next_group_refresh = self.last_received + conf.get("REALTIME_GROUP_REFRESH_INTERVAL")

        identity = await auth.authenticate(self.scope)
        await self.accept()
        if identity is None:
            self.closing = True
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        self.identity = identity
        await self.send_frame(
            {
                "type": "welcome",
                "payload": {
                    "agent": identity.agent_id,
                    "workspace": identity.workspace_id,
                    "max_message_bytes": conf.get("REALTIME_MAX_MESSAGE_BYTES"),
                    "idle_timeout": conf.get("REALTIME_IDLE_TIMEOUT"),
                },
            }
        )
        self.heartbeat = asyncio.create_task(self.heartbeat_loop())

    async def disconnect(self, code: int) -> None:
        if self.heartbeat is not None and self.heartbeat is not asyncio.current_task():
            self.heartbeat.cancel()
        if self.identity is None:
            return
        for number in list(self.presence_states):
            try:
                await self.set_presence(number, presence.LEFT)
            except (RedisError, OSError, TimeoutError):
                logger.warning("realtime: could not clear presence on #%s", number, exc_info=True)
        try:
            for group in set(self.subscriptions.values()):
                await self.channel_layer.group_discard(group, self.channel_name)
        except (RedisError, OSError, TimeoutError):
            # Left behind, the memberships go with this process's subscriptions (the pub/sub
            # layer, realtime/layers.py), and sends to a closed socket's channel are dropped
            # meanwhile.
            logger.warning("realtime: could not leave groups", exc_info=True)
        self.subscriptions.clear()

    @property
    def me(self) -> Identity:
        if self.identity is None:
            raise RuntimeError("only an authenticated socket gets here")
        return self.identity

    async def close_with(self, code: int) -> None:
        self.closing = True
        await self.close(code=code)

    # --- client messages ----------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.identity is None or self.closing:
            return
        self.last_received = time.monotonic()
        verdict = self.limiter.hit(self.last_received)
        if verdict == MessageRateLimiter.ABUSIVE:
            await self.close_with(CLOSE_RATE_LIMITED)
            return
        if verdict == MessageRateLimiter.LIMITED:
            await self.send_error("rate_limited", "Too many messages; slow down.")
            return
        if text_data is None:
            await self.send_error("unsupported_frame", "Send JSON text frames.")
            return
        hard_max = conf.get("REALTIME_HARD_MAX_MESSAGE_BYTES")
        # A character is at least one byte: a long string is too big before encoding it.
        size = hard_max + 1 if len(text_data) > hard_max else len(text_data.encode())
        if size > hard_max:
            await self.close_with(CLOSE_TOO_BIG)
            return
        if size > conf.get("REALTIME_MAX_MESSAGE_BYTES"):
            await self.send_error(
                "message_too_large",
                f"Messages are at most {conf.get('REALTIME_MAX_MESSAGE_BYTES')} bytes.",
            )
            return
        try:
            message = json.loads(text_data)
        except (ValueError, RecursionError):
            await self.send_error("invalid_json", "The message is not valid JSON.")
            return
        ref = message.get("id") if isinstance(message, dict) else None
        if not (isinstance(ref, int | str) and not isinstance(ref, bool) and len(str(ref)) <= 64):
            ref = None
        try:
            await self.handle(message, ref)
        except ProtocolError as exc:
            await self.send_error(exc.code, exc.message, ref)
        except (RedisError, OSError, TimeoutError):
            # The channel layer is down for a moment: the client may retry; the socket lives.
            logger.warning("realtime: %s failed", message.get("type"), exc_info=True)
            await self.send_error("unavailable", "Temporarily unavailable; try again.", ref)

    async def handle(self, message: Any, ref: int | str | None) -> None:
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise ProtocolError("invalid_message", 'A message is an object with a "type".')
        payload = message.get("payload", {})
        if not isinstance(payload, dict):
            raise ProtocolError("invalid_payload", '"payload" must be an object.')
        handler = self.handlers().get(message["type"])
        if handler is None:
            raise ProtocolError("unknown_type", "Unknown message type.")
        await handler(payload, ref)

    def handlers(self) -> dict[str, Callable[[dict[str, Any], Any], Awaitable[None]]]:
        return {
            "ping": self.on_ping,
            "subscribe": self.on_subscribe,
            "unsubscribe": self.on_unsubscribe,
            "presence": self.on_presence,
        }

    async def on_ping(self, payload: dict[str, Any], ref: Any) -> None:
        await self.send_frame({"type": "pong"}, ref)

    async def on_subscribe(self, payload: dict[str, Any], ref: Any) -> None:
        channel = self.channel_of(payload)
        group = await self.group_for(channel)
        if channel not in self.subscriptions:
            ticket_channels = sum(1 for c in self.subscriptions if c.startswith("ticket:"))
            if channel.startswith("ticket:") and ticket_channels >= conf.get(
                "REALTIME_MAX_TICKET_SUBSCRIPTIONS"
            ):
                raise ProtocolError(
                    "too_many_subscriptions", "Unsubscribe from a ticket before adding one."
                )
            await self.channel_layer.group_add(group, self.channel_name)
            self.subscriptions[channel] = group
        await self.send_frame({"type": "subscribed", "payload": {"channel": channel}}, ref)
        if channel.startswith("ticket:"):
            # A newcomer sees who is already there.
            number = int(channel.removeprefix("ticket:"))
            update = await self.call_presence(
                presence.acurrent, workspace_id=self.me.workspace_id, number=number
            )
            if update is not None:
                await self.send(text_data=self.presence_message(number, update.viewers)["text"])

    async def on_unsubscribe(self, payload: dict[str, Any], ref: Any) -> None:
        channel = self.channel_of(payload)
        self.check_channel_syntax(channel)
        group = self.subscriptions.pop(channel, None)
        if group is not None:
            await self.channel_layer.group_discard(group, self.channel_name)
        await self.send_frame({"type": "unsubscribed", "payload": {"channel": channel}}, ref)

    async def on_presence(self, payload: dict[str, Any], ref: Any) -> None:
        number = payload.get("ticket")
        state = payload.get("state")
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            raise ProtocolError("invalid_payload", '"ticket" must be a ticket number.')
        if state not in (*presence.STATES, presence.LEFT):
            raise ProtocolError("invalid_payload", '"state" is viewing, typing or left.')
        if state == presence.LEFT and number not in self.presence_states:
            return
        if number not in self.presence_states:
            if len(self.presence_states) >= conf.get("REALTIME_MAX_PRESENCE_TICKETS"):
                raise ProtocolError("too_many_tickets", "Leave a ticket before viewing another.")
            await self.check_ticket(number)
        update = await self.call_presence(self.set_presence, number, state)
        if update is None:
            raise ProtocolError("unavailable", "Presence is unavailable; try again.")

    # --- channels and tickets -----------------------------------------------------------

    @staticmethod
    def channel_of(payload: dict[str, Any]) -> str:
        channel = payload.get("channel")
        if not isinstance(channel, str) or not channel or len(channel) > MAX_CHANNEL_LENGTH:
            raise ProtocolError("invalid_payload", '"channel" must be a channel name.')
        return channel

    @staticmethod
    def check_channel_syntax(channel: str) -> None:
        if channel in ("tickets", "agent:me", "presence"):
            return
        match = TICKET_CHANNEL.fullmatch(channel)
        if match is None or int(match.group(1)) > MAX_TICKET_NUMBER:
            raise ProtocolError("unknown_channel", "Unknown channel.")

    async def group_for(self, channel: str) -> str:
        workspace_id = self.me.workspace_id
        self.check_channel_syntax(channel)
        if channel == "tickets":
            return groups.tickets(workspace_id)
        if channel == "agent:me":
            return groups.agent(workspace_id, self.me.agent_id)
        if channel == "presence":
            return groups.presence(workspace_id)
        number = int(channel.removeprefix("ticket:"))
        await self.check_ticket(number)
        return groups.ticket(workspace_id, number)

    async def check_ticket(self, number: int) -> None:
        if number in self.known_tickets:
            return
        if number > MAX_TICKET_NUMBER or not await ticket_exists(self.me.workspace_id, number):
            raise ProtocolError("not_found", "Ticket not found.")
        self.known_tickets.add(number)

    # --- presence -----------------------------------------------------------------------

    async def set_presence(
        self, number: int, state: str, *, refresh: bool = False
    ) -> presence.PresenceUpdate | None:
        """Record this socket's state on a ticket (and broadcast it when it changed).
        ``refresh`` (the heartbeat) only re-records a state that is still current."""
        me = self.me
        # One presence change at a time per socket: a heartbeat refresh that raced a
        # "left" would otherwise put the socket back on the ticket for good.
        async with self.presence_lock:
            if refresh and self.presence_states.get(number) != state:
                return None
            update = await presence.aset_state(
                workspace_id=me.workspace_id,
                number=number,
                member=self.channel_name,
                agent_id=me.agent_id,
                name=me.name,
                state=state,
            )
            if state == presence.LEFT:
                self.presence_states.pop(number, None)
            else:
                self.presence_states[number] = state
        if update.changed:
            await self.broadcast_presence(number, update.viewers)
        return update

    async def call_presence(
        self,
        fn: Callable[..., Awaitable[presence.PresenceUpdate | None]],
        *args: Any,
        **kwargs: Any,
    ) -> presence.PresenceUpdate | None:
        """Presence is a nicety: when Redis fails, the socket keeps working without it."""
        try:
            return await fn(*args, **kwargs)
        except (RedisError, OSError, TimeoutError):
            logger.warning("realtime: presence unavailable", exc_info=True)
            return None

    def presence_message(self, number: int, viewers: list[dict[str, Any]]) -> dict[str, Any]:
        event = make_event(
            event_type="presence.changed",
            workspace_id=self.me.workspace_id,
            ticket_number=number,
            data={"ticket": number, "viewers": viewers},
            actor={"type": "agent", "agent": self.me.agent_id},
        )
        return group_message(event, agents_only=True)

    async def broadcast_presence(self, number: int, viewers: list[dict[str, Any]]) -> None:
        workspace_id = self.me.workspace_id
        await send_to_groups(
            [groups.ticket(workspace_id, number), groups.presence(workspace_id)],
            self.presence_message(number, viewers),
        )

    # --- heartbeat ------------------------------------------------------------------------

    async def heartbeat_loop(self) -> None:
        while not self.closing:
            await asyncio.sleep(conf.get("REALTIME_HEARTBEAT_INTERVAL"))
            code = await self.heartbeat_tick()
            if code is not None:
                await self.close_with(code)
                return

    async def heartbeat_tick(self) -> int | None:
        """One housekeeping round; the close code when the socket must go."""
        me = self.me
        now = time.monotonic()
        if now - self.last_received > conf.get("REALTIME_IDLE_TIMEOUT"):
            return CLOSE_IDLE
        if me.expires_at is not None and time.time() >= me.expires_at:
            return CLOSE_UNAUTHORIZED
        try:
            if now >= self.next_check:
                if not await auth.still_valid(me):
                    return CLOSE_UNAUTHORIZED
                self.next_check = now + conf.get("REALTIME_REVALIDATE_INTERVAL")
            for number, state in list(self.presence_states.items()):
                await self.set_presence(number, state, refresh=True)
            if now >= self.next_group_refresh:
                for group in set(self.subscriptions.values()):
                    await self.channel_layer.group_add(group, self.channel_name)
                self.next_group_refresh = now + conf.get("REALTIME_GROUP_REFRESH_INTERVAL")
        except (RedisError, OSError, TimeoutError, DatabaseError):
            # A dependency down for a moment must not kill the socket; the next round retries.
            logger.warning("realtime: heartbeat round failed", exc_info=True)
        return None

    # --- events from the channel layer --------------------------------------------------

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels (4.2+) hops to a worker thread before every handler to close stale
        # database connections — one shared thread for all sockets. Events touch no
        # database, and every query here goes through database_sync_to_async (which closes
        # them itself), so the hot path skips the hop: a fan-out to a thousand sockets was
        # a thousand thread round trips per event, serialised.
        if message["type"] == EVENT_MESSAGE_TYPE:
            await self.realtime_event(message)
        else:
            await super().dispatch(message)

    async def realtime_event(self, message: dict[str, Any]) -> None:
        identity = self.identity
        if identity is None or self.closing:
            return
        if message.get("agents_only") and not identity.is_agent:
            return
        event_id = message["id"]
        if event_id in self.recent:
            return
        self.recent.append(event_id)
        await self.send(text_data=message["text"])

    # --- frames ---------------------------------------------------------------------------

    async def send_frame(self, frame: dict[str, Any], ref: Any = None) -> None:
        if ref is not None:
            frame = {**frame, "ref": ref}
        await self.send(text_data=json.dumps(frame, separators=(",", ":")))

    async def send_error(self, code: str, message: str, ref: Any = None) -> None:
        await self.send_frame({"type": "error", "payload": {"code": code, "message": message}}, ref)


class NotFoundConsumer(AsyncWebsocketConsumer):
    """Any other websocket path: refused at the handshake (HTTP 403)."""

    async def connect(self) -> None:
        await self.close()
