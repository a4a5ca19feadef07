"""Helpers shared by the tickets API tests (tests/test_api_*.py): plain functions, so each
test module declares the few fixtures it needs with them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

from enque.tests.factories import AgentFactory, UserFactory
from tickets.actors import Actor
from tickets.models import Ticket
from tickets.services import ticket_create
from workspaces.models import Agent, AgentRole, Customer, Workspace


def error(response: Any) -> dict[str, Any]:
    """The error envelope's body, checking it has the envelope's shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["request_id"] == response["X-Request-ID"]
    return body["error"]


def light_agent(workspace: Workspace, email: str = "lena@a.test") -> Agent:
    """A light agent: reads everything, adds internal notes, changes nothing."""
    user = UserFactory(email=email, name="Lena Light")
    return AgentFactory(workspace=workspace, user=user, role=AgentRole.LIGHT)


def write_in(customer: Customer, subject: str = "Toner everywhere", **kwargs: Any) -> Ticket:
    """A ticket the customer opened by email, through the service (history and all)."""
    return ticket_create(
        workspace=customer.workspace,
        actor=Actor.for_customer(customer),
        subject=subject,
        customer=customer,
        body_text=kwargs.pop("body_text", "The toner cartridge burst."),
        channel="email",
        **kwargs,
    )


def use_memory_storage(settings: Any) -> None:
    # Attachments go to memory, never to the project's media/ folder.
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }


def queries_of(call: Callable[[], Any]) -> tuple[Any, list[str]]:
    """Run ``call``; return its result and the SQL of every query it issued."""
    with CaptureQueriesContext(connection) as captured:
        result = call()
    return result, [query["sql"] for query in captured.captured_queries]
