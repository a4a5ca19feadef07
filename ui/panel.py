"""The ticket page's option lists, read once per workspace and kept in the cache.

The side panel's pickers (agents, teams, categories, the tag datalist) and the reply box's
canned replies are the same on every ticket of a workspace, so the page reads them from
Django's cache: no query when warm; when cold, one query for the four pickers (a
``UNION ALL``) and one for the agent's canned replies.

Never stale: each workspace has a *panel version*, a random token in the cache; entries
are stored under it, and ``panel_changed`` replaces it whenever a row those lists show is
written. The post_save / post_delete receivers below do that for Agent, User (an agent's
name falls back to the user's), Team, Category, Tag and CannedReply, connected in
``UiConfig.ready``: those rows are written by the services of three apps, by the Django
admin and by the automation engine, and a receiver sees every ``save()`` and ``delete()``
of them. A write that skips signals (a queryset ``.update()``, ``bulk_create``) must call
``panel_changed`` itself or go through ``save()``. The token is replaced at once (this
transaction's own reads, and tests, see the change) and again after commit: a concurrent
page that read the token between the two, and the rows as they were before the commit,
cached them under a token that is dead by then. A new token rather than a counter, so a
version key evicted from Redis can never come back to a number that old entries still use.

Never across workspaces: every key carries the workspace id (and the agent's, for canned
replies, which include the agent's personal ones), and the rows are read with
``for_workspace``.

Cached values are plain tuples of what the page shows, never model instances: a Team
carries its decrypted webhook URL and a User its password hash, neither of which belongs
in Redis. Without a reachable cache the lists are read from the database every time.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.core.cache import cache
from django.db.models import CharField, F, Q, QuerySet, Value
from django.db.models.functions import Coalesce, NullIf
from django.db.models.signals import post_delete, post_save
from redis.exceptions import RedisError

from enque import cache_versions
from tickets.models import CannedReply, Category, Tag
from workspaces.models import Agent, Team, User

logger = logging.getLogger(__name__)

# Part of every key: change it when the cached shapes change, so a deploy never unpickles
# the previous release's values.
FORMAT = 1
# Entries outlive nothing but an unused workspace: the version makes them stale, not time.
ENTRY_SECONDS = 3600


@dataclass(frozen=True)
class Option:
    pk: int
    name: str


@dataclass(frozen=True)
class AgentOption:
    pk: int
    name: str
    is_active: bool


@dataclass(frozen=True)
class CannedOption:
    pk: int
    title: str
    body: str
    owner_id: int | None


@dataclass(frozen=True)
class PanelOptions:
    """Every agent (deactivated ones last: the history names them), teams, categories and
    tags, in the order the pickers show them."""

    agents: tuple[AgentOption, ...]
    teams: tuple[Option, ...]
    categories: tuple[Option, ...]
    tags: tuple[Option, ...]

    @property
    def active_agents(self) -> list[AgentOption]:
        return [a for a in self.agents if a.is_active]


# --- Reads ---------------------------------------------------------------------------------


def _picker_rows(workspace_id: int) -> QuerySet[Any]:
    # Agent.name in SQL: the display name, else the user's name, else their email.
    agent_name = Coalesce(
        NullIf(F("display_name"), Value("")),
        NullIf(F("user__name"), Value("")),
        "user__email",
        output_field=CharField(),
    )

    def rows(model: Any, kind: str, label: Any, active: Any) -> QuerySet[Any]:
        # Only annotations, declared in the same order in every part, so the columns line
        # up; order_by() drops the models' default ordering, which a UNION part cannot have.
        return (
            model.objects.for_workspace(workspace_id)
            .order_by()
            .annotate(kind=Value(kind), ident=F("pk"), label=label, active=active)
            .values_list("kind", "ident", "label", "active")
        )

    return (
        rows(Agent, "agent", agent_name, F("is_active"))
        .union(
            rows(Team, "team", F("name"), Value(True)),
            rows(Category, "category", F("name"), Value(True)),
            rows(Tag, "tag", F("name"), Value(True)),
            all=True,
        )
        # The database's collation, as each list had with its own ORDER BY name, id.
        .order_by("kind", "label", "ident")
    )


def read_panel_options(workspace_id: int) -> PanelOptions:
    """The four pickers from the database, in one query."""
    lists: dict[str, list[Any]] = {"agent": [], "team": [], "category": [], "tag": []}
    for kind, pk, label, active in _picker_rows(workspace_id):
        if kind == "agent":
            lists[kind].append(AgentOption(pk, label, bool(active)))
        else:
            lists[kind].append(Option(pk, label))
    agents = sorted(lists["agent"], key=lambda a: (not a.is_active, a.name.casefold(), a.pk))
    return PanelOptions(
        agents=tuple(agents),
        teams=tuple(lists["team"]),
        categories=tuple(lists["category"]),
        tags=tuple(lists["tag"]),
    )


def read_canned_options(workspace_id: int, agent_id: int) -> list[CannedOption]:
    """The workspace's shared canned replies and the agent's own, by title."""
    return [
        CannedOption(*row)
        for row in CannedReply.objects.for_workspace(workspace_id)
        .filter(Q(owner__isnull=True) | Q(owner_id=agent_id))
        .order_by("title", "id")
        .values_list("pk", "title", "body", "owner_id")
    ]


# --- The cache -----------------------------------------------------------------------------


def _version_key(workspace_id: int) -> str:
    return f"ui:panel:{FORMAT}:version:{workspace_id}"


def panel_version(workspace_id: int) -> str | None:
    """The workspace's current token (made if there is none); None without a cache."""
    return cache_versions.current_token(_version_key(workspace_id))


def panel_changed(workspace_id: int) -> None:
    """A row the ticket panel lists changed: every cached list of the workspace is stale."""
    cache_versions.replace_token(_version_key(workspace_id))


def _cached(key: str | None, read: Any) -> Any:
    if key is None:
        return read()
    try:
        value = cache.get(key)
    except (RedisError, OSError):
        return read()
    if value is None:
        value = read()
        # Not cached this time: the next page reads the database again.
        with contextlib.suppress(RedisError, OSError):
            cache.set(key, value, timeout=ENTRY_SECONDS)
    return value


class PanelLists:
    """One request's lists: each read at most once, from the cache when it holds them."""

    def __init__(self, *, workspace_id: int, agent_id: int) -> None:
        self.workspace_id = workspace_id
        self.agent_id = agent_id

    @cached_property
    def _version(self) -> str | None:
        return panel_version(self.workspace_id)

    def _key(self, name: str) -> str | None:
        if self._version is None:
            return None
        return f"ui:panel:{FORMAT}:{self.workspace_id}:{self._version}:{name}"

    @cached_property
    def options(self) -> PanelOptions:
        return _cached(self._key("options"), lambda: read_panel_options(self.workspace_id))

    @cached_property
    def canned(self) -> list[CannedOption]:
        return _cached(
            self._key(f"canned:{self.agent_id}"),
            lambda: read_canned_options(self.workspace_id, self.agent_id),
        )


# --- Invalidation --------------------------------------------------------------------------

# The fields the lists show, per model: a save(update_fields=...) of none of them (an
# agent's last_seen_at, a canned reply's usage count) leaves the lists as they were.
SHOWN_FIELDS: dict[type, frozenset[str]] = {
    Agent: frozenset({"display_name", "is_active", "user", "user_id"}),
    Team: frozenset({"name"}),
    Category: frozenset({"name"}),
    Tag: frozenset({"name"}),
    CannedReply: frozenset({"title", "body", "owner", "owner_id"}),
}
USER_SHOWN_FIELDS = frozenset({"name", "email"})


def _row_saved(sender: type, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    if update_fields is not None and not SHOWN_FIELDS[sender] & set(update_fields):
        return
    panel_changed(instance.workspace_id)


def _row_deleted(sender: type, instance: Any, **kwargs: Any) -> None:
    panel_changed(instance.workspace_id)


def _user_saved(
    sender: type, instance: User, created: bool = False, update_fields: Any = None, **kwargs: Any
) -> None:
    # A new user has no membership yet; a sign-in saves last_login only.
    if created or (update_fields is not None and not USER_SHOWN_FIELDS & set(update_fields)):
        return
    for workspace_id in set(
        Agent.objects.filter(user_id=instance.pk).values_list("workspace_id", flat=True)
    ):
        panel_changed(workspace_id)


def connect_signals() -> None:
    """Called once, from UiConfig.ready (so workers, the admin and the shell connect too)."""
    for model in SHOWN_FIELDS:
        post_save.connect(_row_saved, sender=model, dispatch_uid=f"ui.panel.saved.{model}")
        post_delete.connect(_row_deleted, sender=model, dispatch_uid=f"ui.panel.deleted.{model}")
    post_save.connect(_user_saved, sender=User, dispatch_uid="ui.panel.user_saved")
