"""Channel-layer group names: the one place that spells them.

Every group name starts with the workspace id, and the workspace of a connection comes from
its credentials only, so no event can cross tenants. Every group here is an *agent*
audience: a future customer-facing socket must use groups of its own (and see
``publish.AGENTS_ONLY``).
"""

from __future__ import annotations


def tickets(workspace_id: int) -> str:
    """Every ticket change in the workspace (the inbox)."""
    return f"ws.{workspace_id}.tickets"


def ticket(workspace_id: int, number: int) -> str:
    """One ticket's thread, history and presence."""
    return f"ws.{workspace_id}.ticket.{number}"


def agent(workspace_id: int, agent_id: int) -> str:
    """What concerns one agent: assignments (and, later, mentions)."""
    return f"ws.{workspace_id}.agent.{agent_id}"


def presence(workspace_id: int) -> str:
    """Presence on every ticket of the workspace (badges in the ticket list)."""
    return f"ws.{workspace_id}.presence"
