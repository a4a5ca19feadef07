"""Who is viewing or typing on a ticket: collision detection.

Kept in the Redis of ``REDIS_URL`` (the one the cache, channel layer and broker use), per
workspace and ticket, so every server process sees every viewer::

    enque:presence:{<workspace>:<number>}      ZSET  <connection> → expires at (epoch s)
    enque:presence:{<workspace>:<number>}:who  HASH  <connection> → {"agent", "name", "state"}

A member is one connection (its channel name), not an agent: an agent with two tabs on a
ticket stays present until both have left. The viewer list has one row per agent, and
"typing" wins over "viewing". An entry lives ``REALTIME_PRESENCE_TTL`` seconds unless
refreshed: each socket refreshes its own every heartbeat and removes them when it closes,
so only the entries of a process that died without closing its sockets ever expire.

One Lua script purges expired entries, applies a change and reads the result atomically:
two agents opening a ticket at the same moment each see the other. (Django's cache API can
only read-modify-write one value, which would lose one of two concurrent arrivals.) With
``REDIS_URL=memory`` the store is a dict in this process, the only one in that mode.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis
from asgiref.sync import sync_to_async
from django.conf import settings

from realtime import conf

STATES = ("viewing", "typing")
# "left" removes the connection's entry.
LEFT = "left"

_UPDATE_SCRIPT = """
-- KEYS: the zset, the hash. ARGV: now, expires at, ttl, member ('' = read only),
-- entry ('' = remove the member). Returns {changed, entry, entry, ...} (live entries).
local purged = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local changed = 0
if #purged > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
  redis.call('HDEL', KEYS[2], unpack(purged))
  changed = 1
end
if ARGV[4] ~= '' then
  if ARGV[5] == '' then
    if redis.call('ZREM', KEYS[1], ARGV[4]) == 1 then changed = 1 end
    redis.call('HDEL', KEYS[2], ARGV[4])
  else
    local previous = redis.call('HGET', KEYS[2], ARGV[4])
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
    redis.call('HSET', KEYS[2], ARGV[4], ARGV[5])
    if previous ~= ARGV[5] then changed = 1 end
  end
end
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {changed}
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
local entries = redis.call('HMGET', KEYS[2], unpack(redis.call('ZRANGE', KEYS[1], 0, -1)))
table.insert(entries, 1, changed)
return entries
"""


@dataclass(frozen=True)
class PresenceUpdate:
    # One row per agent: {"agent", "name", "state"}, sorted by name.
    viewers: list[dict[str, Any]]
    # Whether the ticket's viewers changed (this entry, or expired ones purged): only then
    # is a presence.changed broadcast worth sending.
    changed: bool


def viewers_of(entries: list[str]) -> list[dict[str, Any]]:
    by_agent: dict[int, dict[str, Any]] = {}
    for raw in entries:
        entry = json.loads(raw)
        seen = by_agent.get(entry["agent"])
        if seen is None or entry["state"] == "typing":
            by_agent[entry["agent"]] = entry
    return sorted(by_agent.values(), key=lambda v: (v["name"].casefold(), v["agent"]))


def _entry(agent_id: int, name: str, state: str) -> str:
    return json.dumps({"agent": agent_id, "name": name, "state": state}, sort_keys=True)


class RedisStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.script = self.client.register_script(_UPDATE_SCRIPT)

    def apply(
        self, workspace_id: int, number: int, member: str, entry: str, now: float, ttl: int
    ) -> tuple[bool, list[str]]:
        # The braces are a cluster hash tag: both keys of a ticket live on one node.
        key = f"enque:presence:{{{workspace_id}:{number}}}"
        result = self.script(keys=[key, f"{key}:who"], args=[now, now + ttl, ttl, member, entry])
        entries = [e.decode() for e in result[1:] if e is not None]
        return bool(result[0]), entries


class MemoryStore:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        # (workspace, number) → member → (expires at, entry)
        self.tickets: dict[tuple[int, int], dict[str, tuple[float, str]]] = {}

    def apply(
        self, workspace_id: int, number: int, member: str, entry: str, now: float, ttl: int
    ) -> tuple[bool, list[str]]:
        with self.lock:
            members = self.tickets.setdefault((workspace_id, number), {})
            expired = [m for m, (expires, _) in members.items() if expires <= now]
            for m in expired:
                del members[m]
            changed = bool(expired)
            if member:
                previous = members.pop(member, None)
                if entry:
                    members[member] = (now + ttl, entry)
                changed = changed or (previous[1] if previous else "") != entry
            entries = [e for _, e in members.values()]
            if not members:
                del self.tickets[(workspace_id, number)]
            return changed, entries


_store: RedisStore | MemoryStore | None = None
_store_lock = threading.Lock()


def store() -> RedisStore | MemoryStore:
    global _store
    with _store_lock:
        if settings.REDIS_MODE == "memory":
            if not isinstance(_store, MemoryStore):
                _store = MemoryStore()
        elif not isinstance(_store, RedisStore) or _store.url != settings.REDIS_URL:
            _store = RedisStore(settings.REDIS_URL)
        return _store


def _apply(workspace_id: int, number: int, member: str, entry: str) -> PresenceUpdate:
    changed, entries = store().apply(
        workspace_id, number, member, entry, time.time(), int(conf.get("REALTIME_PRESENCE_TTL"))
    )
    return PresenceUpdate(viewers=viewers_of(entries), changed=changed)


def set_state(
    *, workspace_id: int, number: int, member: str, agent_id: int, name: str, state: str
) -> PresenceUpdate:
    """Record (or refresh) one connection's state on a ticket; ``left`` removes it."""
    entry = "" if state == LEFT else _entry(agent_id, name, state)
    return _apply(workspace_id, number, member, entry)


def current(*, workspace_id: int, number: int) -> PresenceUpdate:
    """Who is on the ticket now (expired entries purged on the way)."""
    return _apply(workspace_id, number, "", "")


# The consumer's entry points: a Redis round trip off the event loop.
aset_state = sync_to_async(set_state, thread_sensitive=False)
acurrent = sync_to_async(current, thread_sensitive=False)
