"""Every action a rule can take, round-robin and least-loaded assignment, and the canned
reply (placeholders filled, template code left inert)."""

from __future__ import annotations

from collections import Counter

import pytest
from django.core import mail

from automation import actions
from automation.models import AssignmentCursor, AutomationRun, Notification
from automation.tests.support import agent_in, team_with, write_in
from enque.errors import InvalidInput
from enque.tests.factories import CannedReplyFactory, CategoryFactory
from tickets.actors import Actor
from tickets.models import Comment
from tickets.services import ticket_update
from workspaces.models import AgentRole

pytestmark = pytest.mark.django_db


def fired(rule, customer, hooks_run, *acts, subject="Help please"):
    rule("ticket_created", actions=list(acts))
    with hooks_run():
        ticket = write_in(customer, subject)
    ticket.refresh_from_db()
    return ticket


def test_set_status_and_priority(rule, customer_a, hooks_run) -> None:
    ticket = fired(
        rule,
        customer_a,
        hooks_run,
        ("set_status", {"status": "pending"}),
        ("set_priority", {"priority": "urgent"}),
    )
    assert (ticket.status, ticket.priority) == ("pending", "urgent")


def test_set_category_team_and_assignee(rule, customer_a, workspace_a, bob, hooks_run) -> None:
    category = CategoryFactory(workspace=workspace_a, name="Hardware")
    team = team_with(workspace_a, bob)
    ticket = fired(
        rule,
        customer_a,
        hooks_run,
        ("set_category", {"category_id": category.pk}),
        ("set_team", {"team_id": team.pk}),
        ("set_assignee", {"agent_id": bob.pk}),
    )
    assert (ticket.category, ticket.team, ticket.assignee) == (category, team, bob)
    assert ticket.status == "open"  # assigned: being worked on


def test_clearing_team_category_and_assignee(rule, customer_a, workspace_a, bob, hooks_run):
    category = CategoryFactory(workspace=workspace_a, name="Hardware")
    team = team_with(workspace_a, bob)
    rule(
        "ticket_updated",
        conditions=[("tags", "contains", "reset")],
        actions=[
            ("set_category", {"category_id": None}),
            ("set_team", {"team_id": None}),
            ("set_assignee", {"agent_id": None}),
        ],
    )
    ticket = write_in(customer_a, category=category, team=team, assignee=bob)

    with hooks_run():
        ticket_update(ticket=ticket, actor=Actor.for_agent(bob), tags=["reset"])

    ticket.refresh_from_db()
    assert (ticket.category, ticket.team, ticket.assignee) == (None, None, None)


def test_add_and_remove_tags(rule, customer_a, hooks_run) -> None:
    ticket = fired(
        rule,
        customer_a,
        hooks_run,
        ("add_tags", {"tags": ["Billing", "vip", "spam"]}),
        ("remove_tags", {"tags": ["SPAM"]}),
    )
    assert sorted(ticket.tags.values_list("name", flat=True)) == ["Billing", "vip"]


def test_add_note_fills_placeholders(rule, customer_a, hooks_run) -> None:
    ticket = fired(
        rule,
        customer_a,
        hooks_run,
        ("add_note", {"body": "Check {{customer.first_name}}'s {{ticket.subject}} ({{ 7*7 }})"}),
    )
    note = Comment.objects.get(ticket=ticket, is_internal=True)
    assert note.body_text == "Check Carol's Help please ({{ 7*7 }})"
    assert note.via == "automation" and note.author_type == "system"


def test_send_canned_reply_to_the_customer(rule, customer_a, workspace_a, hooks_run) -> None:
    canned = CannedReplyFactory(
        workspace=workspace_a,
        title="Ack",
        body="Hi {{customer.first_name}}, we got #{{ticket.number}}: {{ticket.subject}}.",
    )
    ticket = fired(
        rule, customer_a, hooks_run, ("send_canned_reply", {"canned_reply_id": canned.pk})
    )
    reply = Comment.objects.get(ticket=ticket, is_internal=False, via="automation")
    assert reply.body_text == f"Hi Carol, we got #{ticket.number}: Help please."
    assert ticket.status == "open" and ticket.last_agent_reply_at is not None
    # An automatic acknowledgement is not a first response.
    assert ticket.first_response_at is None
    canned.refresh_from_db()
    assert canned.usage_count == 1


def test_a_canned_reply_with_hostile_template_code_is_inert(
    rule, customer_a, workspace_a, hooks_run
) -> None:
    hostile = (
        "{{ ticket.__class__.__mro__ }} {% load os %}{% debug %} {{ settings.SECRET_KEY }} "
        "{{ customer.first_name.__len__ }} {{ ''.__class__ }} {# hi #} {{ {{ticket.number}} }}"
    )
    canned = CannedReplyFactory(workspace=workspace_a, title="Evil", body=hostile)
    ticket = fired(
        rule,
        customer_a,
        hooks_run,
        ("send_canned_reply", {"canned_reply_id": canned.pk}),
        subject="{{ customer.email }}",
    )
    reply = Comment.objects.get(ticket=ticket, via="automation")
    expected = hostile.replace("{{ticket.number}}", str(ticket.number))
    assert reply.body_text == expected
    run = AutomationRun.objects.get()
    unknown = run.actions[0]["detail"]["unknown_placeholders"]
    assert "{{ settings.SECRET_KEY }}" in unknown and "{% debug %}" in unknown


def test_a_customer_named_like_a_placeholder_is_not_expanded(rule, workspace_a, hooks_run) -> None:
    from enque.tests.factories import CustomerFactory

    sly = CustomerFactory(workspace=workspace_a, email="sly@x.test", name="{{agent.name}}")
    canned = CannedReplyFactory(workspace=workspace_a, body="Dear {{customer.name}}")
    ticket = fired(rule, sly, hooks_run, ("send_canned_reply", {"canned_reply_id": canned.pk}))
    assert Comment.objects.get(ticket=ticket, via="automation").body_text == "Dear {{agent.name}}"


def test_a_personal_canned_reply_cannot_be_a_rules(rule, workspace_a, bob) -> None:
    personal = CannedReplyFactory(workspace=workspace_a, owner=bob)
    with pytest.raises(InvalidInput) as caught:
        rule("ticket_created", actions=[("send_canned_reply", {"canned_reply_id": personal.pk})])
    assert caught.value.field == "actions.0.params.canned_reply_id"


def test_notify_agents_in_app_and_by_email(
    rule, customer_a, workspace_a, alice, bob, hooks_run
) -> None:
    carl = agent_in(workspace_a, "carl@a.test", "Carl Team")
    team = team_with(workspace_a, carl)
    ticket = fired(
        rule,
        customer_a,
        hooks_run,
        (
            "notify_agents",
            {
                "agent_ids": [alice.pk],
                "team_id": team.pk,
                "message": "New: #{{ticket.number}} {{ticket.subject}}",
            },
        ),
    )
    notes = Notification.objects.filter(ticket=ticket).order_by("recipient_id")
    assert [n.recipient for n in notes] == [alice, carl]
    assert notes[0].kind == "automation"
    assert notes[0].data["message"] == f"New: #{ticket.number} Help please"
    assert sorted(m.to[0] for m in mail.outbox) == ["alice@a.test", "carl@a.test"]


def test_notify_the_assignee(rule, customer_a, bob, hooks_run) -> None:
    rule(
        "customer_replied",
        actions=[("notify_agents", {"assignee": True, "message": "Reply on {{ticket.number}}"})],
    )
    ticket = write_in(customer_a, assignee=bob)
    from tickets.services import comment_create

    with hooks_run():
        comment_create(ticket=ticket, actor=Actor.for_customer(customer_a), body_text="Hello?")

    kinds = Counter(Notification.objects.filter(recipient=bob).values_list("kind", flat=True))
    assert kinds == {"automation": 1, "customer_replied": 1}


# --- Round-robin and least-loaded -------------------------------------------------------------


@pytest.fixture
def trio(workspace_a):
    agents = [agent_in(workspace_a, f"rr{i}@a.test", f"Agent {i}") for i in range(3)]
    light = agent_in(workspace_a, "light@a.test", "Light One", role=AgentRole.LIGHT)
    off = agent_in(workspace_a, "off@a.test", "Off Duty")
    off.is_active = False
    off.save(update_fields=["is_active"])
    team = team_with(workspace_a, *agents, light, off)
    return team, agents


def test_round_robin_takes_turns_among_active_agents(rule, customer_a, trio, hooks_run) -> None:
    team, agents = trio
    rule("ticket_created", actions=[("assign_round_robin", {"team_id": team.pk})])

    with hooks_run():
        tickets = [write_in(customer_a, f"T{i}") for i in range(7)]

    assignees = [t.__class__.objects.get(pk=t.pk).assignee_id for t in tickets]
    ids = [a.pk for a in agents]
    assert assignees == [ids[i % 3] for i in range(7)]
    assert all(t.__class__.objects.get(pk=t.pk).team_id == team.pk for t in tickets)
    assert AssignmentCursor.objects.get(team=team).last_agent_id == ids[0]


def test_round_robin_continues_after_the_team_changes(
    rule, customer_a, trio, workspace_a, hooks_run
) -> None:
    team, agents = trio
    rule("ticket_created", actions=[("assign_round_robin", {"team_id": team.pk})])
    with hooks_run():
        first = write_in(customer_a)
    newcomer = agent_in(workspace_a, "new@a.test", "Newcomer")
    team.memberships.create(workspace=workspace_a, agent=newcomer)
    agents[1].is_active = False
    agents[1].save(update_fields=["is_active"])

    with hooks_run():
        later = [write_in(customer_a) for _ in range(3)]

    assert first.__class__.objects.get(pk=first.pk).assignee == agents[0]
    assert [t.__class__.objects.get(pk=t.pk).assignee for t in later] == [
        agents[2],
        newcomer,
        agents[0],
    ]


def test_least_loaded_spreads_work_evenly(rule, customer_a, trio, alice, hooks_run) -> None:
    team, agents = trio
    # Agent 0 already has two open tickets, agent 1 one; a resolved one does not count.
    for agent, count in ((agents[0], 2), (agents[1], 1)):
        for _ in range(count):
            write_in(customer_a, assignee=agent)
    done = write_in(customer_a, assignee=agents[2])
    ticket_update(ticket=done, actor=Actor.for_agent(alice), status="resolved")
    rule("ticket_created", actions=[("assign_least_loaded", {"team_id": team.pk})])

    with hooks_run():
        new = [write_in(customer_a, f"N{i}") for i in range(6)]

    picked = [t.__class__.objects.get(pk=t.pk).assignee for t in new]
    # Loads 2, 1, 0: the emptiest first, ties to the lowest id, until all carry the same.
    a0, a1, a2 = agents
    assert picked == [a2, a1, a2, a0, a1, a2]
    loads = Counter(
        type(new[0])
        .objects.filter(assignee__in=agents, status__in=["new", "open"])
        .values_list("assignee_id", flat=True)
    )
    assert loads == {a0.pk: 3, a1.pk: 3, a2.pk: 3}


def test_a_team_without_active_agents_is_a_recorded_error(
    rule, customer_a, workspace_a, hooks_run
) -> None:
    team = team_with(workspace_a, name="Empty")
    rule("ticket_created", actions=[("assign_round_robin", {"team_id": team.pk})])

    with hooks_run():
        ticket = write_in(customer_a)

    run = AutomationRun.objects.get()
    assert run.status == "failed" and run.errors[0]["code"] == "no_agent"
    ticket.refresh_from_db()
    assert ticket.assignee is None


# --- Validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action_type", "params", "where"),
    [
        ("explode", {}, "action_type"),
        ("set_status", {}, "params.status"),
        ("set_status", {"status": "asleep"}, "params.status"),
        ("set_status", {"status": "open", "extra": 1}, "params.extra"),
        ("set_priority", {"priority": 3}, "params.priority"),
        ("set_team", {"team_id": "x"}, "params.team_id"),
        ("set_team", {"team_id": 999_999}, "params.team_id"),
        ("set_assignee", {"agent_id": "me"}, "params.agent_id"),
        ("assign_round_robin", {"team_id": None}, "params.team_id"),
        ("add_tags", {"tags": []}, "params.tags"),
        ("add_tags", {"tags": "vip"}, "params.tags"),
        ("add_tags", {"tags": ["x" * 65]}, "params.tags"),
        ("add_note", {"body": ""}, "params.body"),
        ("send_canned_reply", {"canned_reply_id": 999_999}, "params.canned_reply_id"),
        ("notify_agents", {"message": "hi"}, "params.agent_ids"),
        ("notify_agents", {"message": "hi", "agent_ids": [999_999]}, "params.agent_ids"),
        ("call_webhook", {"url": "ftp://x"}, "params.url"),
        ("call_webhook", {"url": "http://169.254.169.254/"}, "params.url"),
    ],
)
def test_an_action_that_does_not_fit_is_refused_naming_the_part(
    workspace_a, action_type, params, where
) -> None:
    with pytest.raises(InvalidInput) as caught:
        actions.validate(action_type, params, workspace_id=workspace_a.pk, where="actions.1")
    assert caught.value.field == f"actions.1.{where}"


def test_another_workspaces_team_is_an_unknown_reference(workspace_a, charlie) -> None:
    team_b = team_with(charlie.workspace, charlie)
    with pytest.raises(InvalidInput) as caught:
        actions.validate("set_team", {"team_id": team_b.pk}, workspace_id=workspace_a.pk)
    assert caught.value.code == "invalid_reference"


def test_a_light_agent_cannot_be_assigned(workspace_a) -> None:
    light = agent_in(workspace_a, "l@a.test", "Lena", role=AgentRole.LIGHT)
    with pytest.raises(InvalidInput):
        actions.validate("set_assignee", {"agent_id": light.pk}, workspace_id=workspace_a.pk)


def test_every_action_type_takes_parameters() -> None:
    from automation.models import ActionType

    assert set(actions.PARAMS) == set(ActionType.values) == set(actions.REQUIRED)
