"""Fetching the objects a request names by id, inside the request's workspace.

A reference to another workspace's object answers exactly like one to a missing object: a
400 ``invalid_reference`` naming the request's field (``team_id``, ``changes.assignee_id``).
The services check the workspace again whatever the caller did.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import models

from enque.errors import InvalidInput
from tickets.models import Category, TicketAttachment
from tickets.selectors import attachments_for_ids
from workspaces.models import Agent, Customer, Team, Workspace

M = TypeVar("M", bound=models.Model)

_LABELS = {Agent: "agent", Team: "team", Category: "category", Customer: "customer"}


def fetch_reference(
    workspace: Workspace, queryset: models.QuerySet[M], pk: int | None, *, field: str
) -> M | None:
    """The workspace's object with this id (None for None); 400 naming ``field`` if none."""
    if pk is None:
        return None
    obj = queryset.filter(workspace_id=workspace.pk, pk=pk).first()
    if obj is None:
        label = _LABELS.get(queryset.model, queryset.model._meta.verbose_name)
        raise InvalidInput(
            f"Unknown {label} in this workspace.", code="invalid_reference", field=field
        )
    return obj


def agent_reference(workspace: Workspace, pk: int | None, *, field: str) -> Agent | None:
    return fetch_reference(workspace, Agent.objects.select_related("user"), pk, field=field)


def team_reference(workspace: Workspace, pk: int | None, *, field: str) -> Team | None:
    return fetch_reference(workspace, Team.objects.all(), pk, field=field)


def category_reference(workspace: Workspace, pk: int | None, *, field: str) -> Category | None:
    return fetch_reference(workspace, Category.objects.all(), pk, field=field)


def customer_reference(workspace: Workspace, pk: int | None, *, field: str) -> Customer | None:
    return fetch_reference(workspace, Customer.objects.all(), pk, field=field)


def attachment_references(
    workspace: Workspace, ids: list[int], *, field: str = "attachment_ids"
) -> list[TicketAttachment]:
    found, missing = attachments_for_ids(workspace=workspace, ids=list(dict.fromkeys(ids)))
    if missing:
        raise InvalidInput(
            f"Unknown attachment {missing[0]} in this workspace.",
            code="invalid_reference",
            field=field,
        )
    return found


def references(workspace: Workspace, data: dict[str, Any], *, prefix: str = "") -> dict[str, Any]:
    """The service keyword arguments for the ``*_id`` keys present in ``data``:
    ``assignee_id``/``agent_id`` → ``assignee``, ``team_id`` → ``team``, ``category_id`` →
    ``category``. Absent keys stay absent (unchanged); null means clear."""
    resolved: dict[str, Any] = {}
    for key, name, fetch in (
        ("assignee_id", "assignee", agent_reference),
        ("agent_id", "assignee", agent_reference),
        ("team_id", "team", team_reference),
        ("category_id", "category", category_reference),
    ):
        if key in data:
            resolved[name] = fetch(workspace, data[key], field=f"{prefix}{key}")
    return resolved
