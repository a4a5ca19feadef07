"""The ticket list item is built by hand (``tickets.api.serializers.ticket_list_item``) for
speed; these tests hold it to DRF's own field-by-field rendering of ``TicketOutput``, byte
for byte, with every embed set and with every one empty, in UTC and in another zone, and
for the detail serializer that extends it.

Alice is an admin of workspace A and Bob an agent there.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from enque.tests.factories import (
    AgentFactory,
    CategoryFactory,
    CompanyFactory,
    CustomerFactory,
    TeamFactory,
    TicketFactory,
    UserFactory,
)
from tickets import selectors
from tickets.actors import Actor
from tickets.api.serializers import TicketDetailOutput, TicketOutput
from tickets.models import Ticket, TicketPriority, TicketStatus
from tickets.services import ticket_update
from workspaces.models import Agent, Workspace

pytestmark = pytest.mark.django_db


def drf_rendering(serializer_class: type[serializers.Serializer], ticket: Ticket) -> Any:
    """What DRF's generic ``Serializer.to_representation`` makes of the ticket."""
    serializer = serializer_class(ticket)
    return serializers.Serializer.to_representation(serializer, ticket)


@pytest.fixture
def tickets(workspace_a: Workspace, bob: Agent) -> list[Ticket]:
    company = CompanyFactory(workspace=workspace_a, name="Initech")
    customer = CustomerFactory(workspace=workspace_a, company=company, name="Péter Ünicode")
    nameless = AgentFactory(
        workspace=workspace_a, user=UserFactory(name="", email="nameless@a.test")
    )
    now = timezone.now().replace(microsecond=123456)
    busy = TicketFactory(
        workspace=workspace_a,
        customer=customer,
        company=company,
        assignee=bob,
        team=TeamFactory(workspace=workspace_a, name="Hardware"),
        category=CategoryFactory(workspace=workspace_a, name="Printers"),
        status=TicketStatus.PENDING,
        priority=TicketPriority.URGENT,
        channel="email",
        first_response_at=now - timedelta(hours=3),
        first_response_due_at=now + timedelta(hours=1),
        sla_due_at=now + timedelta(days=1),
        last_agent_reply_at=now.replace(microsecond=0),
    )
    ticket_update(ticket=busy, actor=Actor.for_agent(bob), tags=["vip", "Billing"])
    bare = TicketFactory(workspace=workspace_a, customer=customer, last_customer_reply_at=None)
    merged = TicketFactory(
        workspace=workspace_a,
        customer=customer,
        assignee=nameless,
        merged_into=busy,
        status=TicketStatus.CLOSED,
        resolved_at=now,
        closed_at=now,
    )
    return [busy, bare, merged]


def listed(workspace: Workspace, agent: Agent) -> list[Ticket]:
    return list(selectors.ticket_filtered(workspace=workspace, agent=agent, filters={}))


@pytest.mark.parametrize("zone", [None, "America/St_Johns"])
def test_a_listed_ticket_renders_as_drf_renders_it(
    tickets: list[Ticket], workspace_a: Workspace, bob: Agent, zone: str | None
) -> None:
    page = listed(workspace_a, bob)
    if zone is not None:
        timezone.activate(ZoneInfo(zone))
    try:
        by_hand = TicketOutput(page, many=True).data
        by_drf = [drf_rendering(TicketOutput, ticket) for ticket in page]
    finally:
        timezone.deactivate()

    assert len(by_hand) == 3
    assert JSONRenderer().render(by_hand) == JSONRenderer().render(by_drf)
    by_number = {item["number"]: item for item in by_hand}
    busy, bare, merged = tickets
    assert by_number[busy.number]["tags"] == ["Billing", "vip"]
    assert by_number[bare.number]["company"] is None
    assert by_number[bare.number]["last_customer_reply_at"] is None
    assert by_number[merged.number]["merged_into"] == busy.number
    assert by_number[merged.number]["assignee"]["name"] == "nameless@a.test"
    if zone is None:
        assert by_number[busy.number]["last_agent_reply_at"].endswith("Z")
    else:
        assert by_number[busy.number]["last_agent_reply_at"].endswith("-03:30")


def test_rendering_a_page_issues_no_query(
    tickets: list[Ticket], workspace_a: Workspace, bob: Agent
) -> None:
    page = listed(workspace_a, bob)
    with CaptureQueriesContext(connection) as captured:
        TicketOutput(page, many=True).data  # noqa: B018
    assert captured.captured_queries == []


def test_the_api_page_with_its_light_embeds_renders_as_fully_loaded_tickets_do(
    tickets: list[Ticket], workspace_a: Workspace, bob: Agent
) -> None:
    # GET /v1/tickets reads fewer columns of the joined rows and the assignee's name and
    # the tag names as values (ticket_list_embeds), not as objects.
    queryset = selectors.ticket_filtered(workspace=workspace_a, agent=bob, filters={})
    with CaptureQueriesContext(connection) as embedding:
        page = selectors.ticket_list_embeds(list(selectors.ticket_list_item_columns(queryset)))
    with CaptureQueriesContext(connection) as rendering:
        by_api = TicketOutput(page, many=True).data

    assert len(embedding.captured_queries) == 3  # the page, the assignees, the tags
    assert rendering.captured_queries == []
    by_drf = [drf_rendering(TicketOutput, ticket) for ticket in listed(workspace_a, bob)]
    assert JSONRenderer().render(by_api) == JSONRenderer().render(by_drf)
    assert {item["number"]: item["tags"] for item in by_api}[tickets[0].number] == [
        "Billing",
        "vip",
    ]


def test_the_detail_adds_its_fields_after_the_list_fields_as_drf_does(
    tickets: list[Ticket], workspace_a: Workspace
) -> None:
    busy = tickets[0]
    ticket = selectors.ticket_get(workspace=workspace_a, number=busy.number)

    by_hand = TicketDetailOutput(ticket).data

    assert JSONRenderer().render(by_hand) == JSONRenderer().render(
        drf_rendering(TicketDetailOutput, ticket)
    )
    assert list(by_hand)[-3:] == ["body", "counts", "deleted_at"]


def test_a_subclass_that_redeclares_a_list_field_is_rendered_by_drf(
    tickets: list[Ticket], workspace_a: Workspace, bob: Agent
) -> None:
    class ShoutingOutput(TicketOutput):
        subject = serializers.SerializerMethodField()

        def get_subject(self, ticket: Ticket) -> str:
            return ticket.subject.upper()

    page = listed(workspace_a, bob)

    rendered = ShoutingOutput(page, many=True).data

    assert rendered == [drf_rendering(ShoutingOutput, ticket) for ticket in page]
    assert [item["subject"] for item in rendered] == [t.subject.upper() for t in page]
