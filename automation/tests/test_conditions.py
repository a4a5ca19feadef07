"""Every condition field with every operator that fits it, and the validation that refuses
a field, operator or value that does not fit (naming it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from automation import conditions, engine, services
from automation.models import ConditionField, TicketSLA
from automation.tests.support import team_with, write_in
from enque.errors import InvalidInput
from enque.tests.factories import CategoryFactory, CompanyFactory, CustomerFactory
from integrations.models import MailboxConnection
from tickets.actors import Actor
from tickets.models import Ticket
from tickets.services import comment_create, ticket_update

pytestmark = pytest.mark.django_db

# A Monday morning, 10:00 UTC.
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@dataclass
class World:
    ticket: Ticket
    refs: dict[str, int]
    now: datetime


@pytest.fixture
def world(alice, bob, workspace_a) -> World:
    company = CompanyFactory(workspace=workspace_a, name="Carol Inc")
    customer = CustomerFactory(
        workspace=workspace_a, email="carol@customer.test", name="Carol", company=company
    )
    mailbox = MailboxConnection.objects.create(
        workspace=workspace_a, provider="imap", email_address="help@a.test"
    )
    team = team_with(workspace_a, bob)
    category = CategoryFactory(workspace=workspace_a, name="Billing")
    ticket = write_in(
        customer,
        "Refund for invoice 42",
        body_text="My card was charged twice.",
        mailbox=mailbox,
        tags=["vip", "billing"],
    )
    ticket_update(
        ticket=ticket,
        actor=Actor.for_agent(alice),
        priority="high",
        assignee=bob,
        team=team,
        category=category,
    )
    comment_create(ticket=ticket, actor=Actor.for_customer(customer), body_text="Any news?")
    Ticket.objects.filter(pk=ticket.pk).update(
        created_at=MONDAY_10 - timedelta(hours=5),
        updated_at=MONDAY_10 - timedelta(hours=2),
        last_customer_reply_at=MONDAY_10 - timedelta(hours=3),
        last_agent_reply_at=None,
        sla_due_at=MONDAY_10 + timedelta(hours=1),
        first_response_due_at=None,
    )
    ticket = Ticket.objects.select_related("customer", "workspace").get(pk=ticket.pk)
    refs = {
        "mailbox": mailbox.pk,
        "team": team.pk,
        "category": category.pk,
        "customer": customer.pk,
        "company": company.pk,
        "bob": bob.pk,
        "alice": alice.pk,
    }
    return World(ticket=ticket, refs=refs, now=MONDAY_10)


def holds(world: World, field: str, operator: str, value: Any) -> bool:
    value = conditions.validate(field, operator, value, workspace_id=world.ticket.workspace_id)
    facts = engine.facts_for(world.ticket, now=world.now)
    return conditions.compare(field, operator, facts.value(field), value)


R = "ref:"  # a value naming one of world.refs

CASES: list[tuple[str, str, Any, bool]] = [
    ("subject", "is", "refund for INVOICE 42", True),
    ("subject", "is_not", "refund for invoice 42", False),
    ("subject", "contains", "INVOICE", True),
    ("subject", "not_contains", "invoice", False),
    ("subject", "not_contains", "printer", True),
    ("subject", "matches", r"invoice \d+$", True),
    ("subject", "matches", r"^invoice", False),
    ("subject", "in", ["x", "Refund for invoice 42"], True),
    ("subject", "not_in", ["x", "y"], True),
    ("body", "contains", "charged twice", True),
    ("body", "matches", r"card .* twice", True),
    ("body", "is", "no", False),
    ("from_address", "is", "CAROL@customer.test", True),
    ("from_address", "contains", "@customer.", True),
    ("from_address", "not_in", ["carol@customer.test"], False),
    ("from_domain", "is", "customer.test", True),
    ("from_domain", "is_not", "customer.test", False),
    ("from_domain", "in", ["other.test", "customer.test"], True),
    ("from_domain", "matches", r"\.test$", True),
    ("mailbox", "is", R + "mailbox", True),
    ("mailbox", "is_not", R + "mailbox", False),
    ("mailbox", "in", [R + "mailbox"], True),
    ("mailbox", "not_in", [R + "mailbox"], False),
    ("mailbox", "is_set", None, True),
    ("mailbox", "is_not_set", None, False),
    ("channel", "is", "email", True),
    ("channel", "is_not", "web", True),
    ("channel", "in", ["web", "api"], False),
    ("channel", "not_in", ["web", "api"], True),
    ("status", "is", "open", True),
    ("status", "is_not", "open", False),
    ("status", "in", ["new", "open"], True),
    ("status", "not_in", ["pending"], True),
    ("priority", "is", "high", True),
    ("priority", "gt", "normal", True),
    ("priority", "gt", "high", False),
    ("priority", "lt", "urgent", True),
    ("priority", "lt", "high", False),
    ("priority", "in", ["low", "normal"], False),
    ("priority", "not_in", ["low", "normal"], True),
    ("assignee", "is", R + "bob", True),
    ("assignee", "is_not", R + "alice", True),
    ("assignee", "in", [R + "alice", R + "bob"], True),
    ("assignee", "not_in", [R + "bob"], False),
    ("assignee", "is_set", None, True),
    ("assignee", "is_not_set", None, False),
    ("team", "is", R + "team", True),
    ("team", "is_not_set", None, False),
    ("category", "is", R + "category", True),
    ("category", "not_in", [R + "category"], False),
    ("customer", "is", R + "customer", True),
    ("customer", "is_set", None, True),
    ("company", "is", R + "company", True),
    ("company", "is_not", R + "company", False),
    ("tags", "contains", "VIP", True),
    ("tags", "not_contains", "vip", False),
    ("tags", "in", ["x", "billing"], True),
    ("tags", "not_in", ["x", "y"], True),
    ("tags", "is_set", None, True),
    ("tags", "is_not_set", None, False),
    ("hours_since_created", "gt", 4.5, True),
    ("hours_since_created", "lt", 4.5, False),
    ("hours_since_updated", "gt", 1, True),
    ("hours_since_updated", "lt", 1, False),
    ("hours_since_customer_reply", "gt", 2, True),
    ("hours_since_customer_reply", "lt", 2, False),
    ("hours_since_customer_reply", "is_set", None, True),
    ("hours_since_agent_reply", "is_not_set", None, True),
    ("hours_since_agent_reply", "gt", 0, False),
    ("sla_due_within_hours", "lt", 2, True),
    ("sla_due_within_hours", "gt", 2, False),
    ("sla_due_within_hours", "is_set", None, True),
    ("sla_breached", "is", False, True),
    ("sla_breached", "is", True, False),
    # The rest of each field's operators.
    ("body", "is_not", "no", True),
    ("body", "not_contains", "charged", False),
    ("body", "in", ["My card was charged twice."], True),
    ("body", "not_in", ["x"], True),
    ("from_address", "is_not", "carol@customer.test", False),
    ("from_address", "not_contains", "carol", False),
    ("from_address", "matches", r"^carol@", True),
    ("from_address", "in", ["x@y.test", "carol@customer.test"], True),
    ("from_domain", "contains", "customer", True),
    ("from_domain", "not_contains", "customer", False),
    ("from_domain", "not_in", ["customer.test"], False),
    ("priority", "is_not", "high", False),
    ("team", "is_not", R + "team", False),
    ("team", "in", [R + "team"], True),
    ("team", "not_in", [R + "team"], False),
    ("team", "is_set", None, True),
    ("category", "is_not", R + "category", False),
    ("category", "in", [R + "category"], True),
    ("category", "is_set", None, True),
    ("category", "is_not_set", None, False),
    ("customer", "is_not", R + "customer", False),
    ("customer", "in", [R + "customer"], True),
    ("customer", "not_in", [R + "customer"], False),
    ("customer", "is_not_set", None, False),
    ("company", "in", [R + "company"], True),
    ("company", "not_in", [R + "company"], False),
    ("company", "is_set", None, True),
    ("company", "is_not_set", None, False),
    ("hours_since_customer_reply", "is_not_set", None, False),
    ("hours_since_agent_reply", "is_set", None, False),
    ("hours_since_agent_reply", "lt", 100, False),
    ("sla_due_within_hours", "is_not_set", None, False),
]


def resolve(world: World, value: Any) -> Any:
    if isinstance(value, str) and value.startswith(R):
        return world.refs[value[len(R) :]]
    if isinstance(value, list):
        return [resolve(world, v) for v in value]
    return value


@pytest.mark.parametrize(("field", "operator", "value", "expected"), CASES)
def test_each_field_and_operator(world: World, field, operator, value, expected) -> None:
    assert holds(world, field, operator, resolve(world, value)) is expected


def test_every_field_and_operator_is_tested() -> None:
    tested = {(f, o) for f, o, _v, _e in CASES} | {("business_hours", "is")}
    fitting = {(f, o) for f in ConditionField.values for o in conditions.operators_for(f)}
    untested = fitting - tested
    # The few pairs not in the table behave as their kind's others (shown above).
    assert not untested, repr(sorted(untested))
    assert {f for f, _o in tested} == set(ConditionField.values)


def test_sla_breached_once_overdue_or_recorded(world: World) -> None:
    world.now = MONDAY_10 + timedelta(hours=2)  # past sla_due_at
    assert holds(world, "sla_breached", "is", True)
    world.now = MONDAY_10
    TicketSLA.objects.create(
        workspace_id=world.ticket.workspace_id,
        ticket=world.ticket,
        resolution_breached_at=MONDAY_10 - timedelta(minutes=5),
    )
    assert holds(world, "sla_breached", "is", True)


def test_business_hours_is_the_default_schedule_open_now(alice, world: World) -> None:
    assert holds(world, "business_hours", "is", True)  # no default schedule: always open
    services.business_hours_create(
        workspace=alice.workspace,
        actor=alice,
        name="Office",
        timezone="Europe/Berlin",
        is_default=True,
        slots=[{"weekday": d, "opens_at": time(9), "closes_at": time(17)} for d in range(5)],
    )
    assert holds(world, "business_hours", "is", True)  # Monday 11:00 in Berlin
    assert not holds(world, "business_hours", "is", False)
    world.now = MONDAY_10 - timedelta(days=1)  # Sunday
    assert holds(world, "business_hours", "is", False)


# --- Validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "operator", "value", "where"),
    [
        ("subject", "gt", 3, "operator"),
        ("priority", "contains", "hi", "operator"),
        ("status", "lt", "open", "operator"),
        ("tags", "is", "vip", "operator"),
        ("hours_since_created", "is", 3, "operator"),
        ("hours_since_created", "is_set", None, "operator"),
        ("business_hours", "contains", "x", "operator"),
        ("nonsense", "is", "x", "field"),
        ("status", "is", "sleeping", "value"),
        ("priority", "gt", "very", "value"),
        ("subject", "contains", "", "value"),
        ("subject", "contains", 42, "value"),
        ("subject", "matches", "([unclosed", "value"),
        ("subject", "in", [], "value"),
        ("subject", "in", "not a list", "value"),
        ("hours_since_created", "gt", -1, "value"),
        ("hours_since_created", "gt", "ten", "value"),
        ("hours_since_created", "gt", True, "value"),
        ("sla_breached", "is", "yes", "value"),
        ("assignee", "is", "bob", "value"),
        ("assignee", "is", 999_999, "value"),
        ("team", "in", [999_999], "value"),
        ("mailbox", "is_set", "x", "value"),
    ],
)
def test_a_condition_that_does_not_fit_is_refused_naming_the_part(
    workspace_a, field, operator, value, where
) -> None:
    with pytest.raises(InvalidInput) as caught:
        conditions.validate(
            field, operator, value, workspace_id=workspace_a.pk, where="conditions.3"
        )
    assert caught.value.field == f"conditions.3.{where}"


def test_another_workspaces_id_is_an_unknown_reference(workspace_a, charlie) -> None:
    with pytest.raises(InvalidInput) as caught:
        conditions.validate("assignee", "is", charlie.pk, workspace_id=workspace_a.pk)
    assert caught.value.code == "invalid_reference"


def test_values_are_normalised(workspace_a) -> None:
    assert (
        conditions.validate("tags", "contains", "  big   customer ", workspace_id=workspace_a.pk)
        == "big customer"
    )
    assert conditions.validate(
        "status", "in", ["open", "open", "new"], workspace_id=workspace_a.pk
    ) == ["open", "new"]


def test_the_prefilter_lets_every_matching_ticket_through(world: World) -> None:
    cases = [
        ("status", "is", "open"),
        ("priority", "gt", "normal"),
        ("assignee", "is", world.refs["bob"]),
        ("team", "is_set", None),
        ("hours_since_created", "gt", 4),
        ("hours_since_customer_reply", "lt", 5),
        ("subject", "contains", "refund"),  # not translated: no narrowing
    ]
    rows = [
        type("C", (), {"field": f, "operator": o, "value": v, "pk": None})() for f, o, v in cases
    ]
    for match in ("all", "any"):
        q = conditions.prefilter(match, rows, world.now)
        assert Ticket.objects.filter(q, pk=world.ticket.pk).exists(), match
    misses = [type("C", (), {"field": "status", "operator": "is", "value": "closed"})()]
    assert not Ticket.objects.filter(
        conditions.prefilter("all", misses, world.now), pk=world.ticket.pk
    ).exists()
