"""Realtime limits and timings. Each can be overridden by a Django setting of the same name
(``REALTIME_HEARTBEAT_INTERVAL = 10``); they are read at use, so tests can override them."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Largest client message, in bytes (UTF-8): bigger ones get a `message_too_large` error
    # frame. Anything past HARD_MAX is treated as abuse: close 1009 ("message too big").
    "REALTIME_MAX_MESSAGE_BYTES": 4 * 1024,
    "REALTIME_HARD_MAX_MESSAGE_BYTES": 64 * 1024,
    # Client messages per connection: a token bucket of BURST messages refilled at RATE per
    # second; a refused message gets a `rate_limited` frame, and ABUSE_STRIKES refusals
    # within ABUSE_WINDOW seconds close the socket with 4429.
    "REALTIME_MESSAGE_RATE": 10.0,
    "REALTIME_MESSAGE_BURST": 20,
    "REALTIME_ABUSE_STRIKES": 40,
    "REALTIME_ABUSE_WINDOW": 10.0,
    # The per-connection housekeeping tick: idle check, presence refresh, auth re-check.
    "REALTIME_HEARTBEAT_INTERVAL": 25.0,
    # A client that sends nothing (not even {"type": "ping"}) for this long is closed with
    # 4408. Clients ping every 30 s; the ASGI server's protocol pings find dead peers.
    "REALTIME_IDLE_TIMEOUT": 120.0,
    # How often an open socket re-checks that its agent (and session) is still valid; a
    # deactivated agent or a signed-out session is closed with 4401 within this.
    "REALTIME_REVALIDATE_INTERVAL": 60.0,
    # A socket re-joins its groups this often. The pub/sub layer keeps memberships as long
    # as the process lives, so this only matters with channels-redis's core layer, which
    # forgets members after its group_expiry (a day by default).
    "REALTIME_GROUP_REFRESH_INTERVAL": 3600.0,
    # Presence entries live this long unless refreshed (every heartbeat refreshes them).
    "REALTIME_PRESENCE_TTL": 60,
    # Subscriptions to single tickets, and tickets with presence, per connection.
    "REALTIME_MAX_TICKET_SUBSCRIPTIONS": 50,
    "REALTIME_MAX_PRESENCE_TICKETS": 20,
    # A publish (a few group sends) never holds a request longer than this, in seconds.
    "REALTIME_PUBLISH_TIMEOUT": 2.0,
}


def get(name: str) -> Any:
    return getattr(settings, name, DEFAULTS[name])
