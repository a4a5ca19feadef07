"""The on-commit hook point of the ticket services.

Services describe what happened as a ``TicketChange`` and hand it to ``emit()``, which runs
the listeners only after the transaction commits (never for one that rolls back).
Realtime, automation and outbound mail subscribe from their ``AppConfig.ready()``, so the
ticket services never import them and no cycle forms.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TicketChange:
    # ticket.created, ticket.updated, comment.created, ticket.assigned, ticket.merged, ...
    type: str
    workspace_id: int
    ticket_id: int
    ticket_number: int
    actor: dict[str, Any]
    # Small and JSON-serialisable: it travels to browsers and task queues as is.
    data: dict[str, Any] = field(default_factory=dict)
    at: str = field(default_factory=lambda: timezone.now().isoformat())


Listener = Callable[[TicketChange], None]
_listeners: list[Listener] = []


def subscribe(listener: Listener) -> Listener:
    """Register a listener (idempotent, so a reloaded app does not subscribe twice)."""
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def unsubscribe(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def dispatch(change: TicketChange) -> None:
    # One broken listener (say, a webhook) must not keep the others from their event.
    for listener in list(_listeners):
        try:
            listener(change)
        except Exception:
            logger.exception("ticket hook %r failed for %s", listener, change.type)


def emit(change: TicketChange) -> None:
    transaction.on_commit(lambda: dispatch(change))
