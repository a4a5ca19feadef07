"""The engine: triggers, all/any, order, workflows that stop after a match, the record of
every firing, loops that cannot happen, failures that break nothing, time rules that fire
once per window and only in their own workspace, and the dry run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from automation import engine, services
from automation.models import (
    AssignmentCursor,
    Automation,
    AutomationRun,
    RunStatus,
    Workflow,
)
from automation.tests.support import agent_in, team_with, write_in
from tickets.actors import Actor
from tickets.models import TicketEvent, TicketEventKind
from tickets.services import comment_create, ticket_update

pytestmark = pytest.mark.django_db


def tags_of(ticket) -> list[str]:
    return sorted(ticket.tags.values_list("name", flat=True))


# --- Firing and its record --------------------------------------------------------------------


def test_a_matching_rule_acts_on_a_new_ticket_and_the_firing_is_recorded(
    rule, customer_a, hooks_run
) -> None:
    automation = rule(
        "ticket_created",
        conditions=[("subject", "contains", "invoice")],
        actions=[("set_priority", {"priority": "high"}), ("add_tags", {"tags": ["billing"]})],
    )

    with hooks_run():
        ticket = write_in(customer_a, "Question about my INVOICE")

    ticket.refresh_from_db()
    assert ticket.priority == "high"
    assert tags_of(ticket) == ["billing"]
    run = AutomationRun.objects.get(automation=automation, ticket=ticket)
    assert run.status == RunStatus.SUCCEEDED
    assert [a["action_type"] for a in run.actions] == ["set_priority", "add_tags"]
    assert all(a["ok"] for a in run.actions) and run.errors == []
    history = TicketEvent.objects.get(ticket=ticket, kind=TicketEventKind.AUTOMATION)
    assert history.actor_type == "automation"
    assert history.data["automation"] == automation.pk
    assert history.data["run"] == run.pk
    assert history.data["name"] == automation.name
    # The changes themselves are in the history as the rule's, too.
    change = TicketEvent.objects.get(ticket=ticket, field="priority")
    assert change.actor_type == "automation" and change.data["automation"] == automation.pk
    automation.refresh_from_db()
    assert automation.run_count == 1 and automation.last_run_at is not None


def test_a_rule_that_does_not_match_does_nothing(rule, customer_a, hooks_run) -> None:
    rule(
        "ticket_created",
        conditions=[("subject", "contains", "invoice")],
        actions=[("set_priority", {"priority": "high"})],
    )

    with hooks_run():
        ticket = write_in(customer_a, "Printer on fire")

    ticket.refresh_from_db()
    assert ticket.priority == "normal"
    assert not AutomationRun.objects.exists()
    assert not TicketEvent.objects.filter(kind=TicketEventKind.AUTOMATION).exists()


@pytest.mark.parametrize(
    ("match", "subject", "fires"),
    [
        ("all", "invoice refund", True),
        ("all", "invoice only", False),
        ("any", "invoice only", True),
        ("any", "refund only", True),
        ("any", "neither", False),
    ],
)
def test_all_and_any(rule, customer_a, hooks_run, match, subject, fires) -> None:
    rule(
        "ticket_created",
        match=match,
        conditions=[("subject", "contains", "invoice"), ("subject", "contains", "refund")],
        actions=[("add_tags", {"tags": ["hit"]})],
    )

    with hooks_run():
        ticket = write_in(customer_a, subject)

    assert (tags_of(ticket) == ["hit"]) is fires


def test_a_rule_without_conditions_fires_on_every_event_of_its_trigger(
    rule, customer_a, hooks_run
) -> None:
    rule("ticket_created", actions=[("add_tags", {"tags": ["new"]})])

    with hooks_run():
        ticket = write_in(customer_a)

    assert tags_of(ticket) == ["new"]


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        ("customer_replied", ["customer_replied"]),
        ("agent_replied", ["agent_replied"]),
        ("note_added", ["note_added"]),
        ("ticket_updated", ["ticket_updated"]),
    ],
)
def test_each_trigger_fires_on_its_event_only(
    rule, customer_a, bob, hooks_run, trigger, expected
) -> None:
    for name in ("customer_replied", "agent_replied", "note_added", "ticket_updated"):
        rule(name, actions=[("add_tags", {"tags": [name]})], is_active=name == trigger)
    ticket = write_in(customer_a)

    with hooks_run():
        if trigger == "customer_replied":
            comment_create(ticket=ticket, actor=Actor.for_customer(customer_a), body_text="Hi?")
        elif trigger == "agent_replied":
            comment_create(ticket=ticket, actor=Actor.for_agent(bob), body_text="On it.")
        elif trigger == "note_added":
            comment_create(
                ticket=ticket, actor=Actor.for_agent(bob), body_text="Hmm.", internal=True
            )
        else:
            ticket_update(ticket=ticket, actor=Actor.for_agent(bob), priority="low")

    # An agent's first public reply also moves the ticket new -> open (a ticket_updated
    # event), but that rule is inactive here.
    assert tags_of(ticket) == expected


def test_rules_run_in_order_and_each_sees_the_previous_ones_changes(
    rule, customer_a, hooks_run
) -> None:
    second = rule(
        "ticket_created",
        conditions=[("priority", "is", "high")],
        actions=[("add_tags", {"tags": ["saw-high"]}), ("set_status", {"status": "open"})],
        position=2,
    )
    first = rule(
        "ticket_created",
        actions=[("set_priority", {"priority": "high"})],
        position=1,
    )

    with hooks_run():
        ticket = write_in(customer_a)

    ticket.refresh_from_db()
    assert ticket.status == "open" and tags_of(ticket) == ["saw-high"]
    runs = list(AutomationRun.objects.order_by("pk").values_list("automation_id", flat=True))
    assert runs == [first.pk, second.pk]


def test_actions_run_in_their_order(rule, customer_a, hooks_run) -> None:
    rule(
        "ticket_created",
        actions=[
            ("add_tags", {"tags": ["a", "b"]}),
            ("remove_tags", {"tags": ["a"]}),
            ("set_priority", {"priority": "low"}),
            ("set_priority", {"priority": "urgent"}),
        ],
    )

    with hooks_run():
        ticket = write_in(customer_a)

    ticket.refresh_from_db()
    assert tags_of(ticket) == ["b"] and ticket.priority == "urgent"


@pytest.mark.parametrize("stop", [True, False])
def test_a_workflow_stops_after_its_first_match_when_it_says_so(
    alice, rule, customer_a, hooks_run, stop
) -> None:
    workflow = services.workflow_create(
        workspace=alice.workspace,
        actor=alice,
        name="Triage",
        trigger="ticket_created",
        stop_after_first_match=stop,
    )
    rule("ticket_created", workflow=workflow, position=0, actions=[("add_tags", {"tags": ["a"]})])
    rule("ticket_created", workflow=workflow, position=1, actions=[("add_tags", {"tags": ["b"]})])
    # Outside the workflow: runs in any case.
    rule("ticket_created", actions=[("add_tags", {"tags": ["c"]})])

    with hooks_run():
        ticket = write_in(customer_a)

    assert tags_of(ticket) == (["a", "c"] if stop else ["a", "b", "c"])


def test_a_workflow_skips_rules_that_do_not_match_before_stopping(
    alice, rule, customer_a, hooks_run
) -> None:
    workflow = services.workflow_create(
        workspace=alice.workspace,
        actor=alice,
        name="Route",
        trigger="ticket_created",
        stop_after_first_match=True,
    )
    rule(
        "ticket_created",
        workflow=workflow,
        position=0,
        conditions=[("subject", "contains", "billing")],
        actions=[("add_tags", {"tags": ["billing"]})],
    )
    rule(
        "ticket_created",
        workflow=workflow,
        position=1,
        conditions=[("subject", "contains", "api")],
        actions=[("add_tags", {"tags": ["api"]})],
    )
    rule("ticket_created", workflow=workflow, position=2, actions=[("add_tags", {"tags": ["x"]})])

    with hooks_run():
        ticket = write_in(customer_a, "API limits")

    assert tags_of(ticket) == ["api"]


def test_workflows_run_before_the_rules_outside_them(alice, rule, customer_a, hooks_run) -> None:
    outside = rule("ticket_created", position=0, actions=[("set_priority", {"priority": "low"})])
    workflow = services.workflow_create(
        workspace=alice.workspace, actor=alice, name="First", trigger="ticket_created"
    )
    inside = rule(
        "ticket_created", workflow=workflow, actions=[("set_priority", {"priority": "high"})]
    )

    with hooks_run():
        ticket = write_in(customer_a)

    ticket.refresh_from_db()
    assert ticket.priority == "low"
    order = list(AutomationRun.objects.order_by("pk").values_list("automation_id", flat=True))
    assert order == [inside.pk, outside.pk]


def test_inactive_rules_and_rules_of_inactive_workflows_do_not_fire(
    alice, rule, customer_a, hooks_run
) -> None:
    rule("ticket_created", is_active=False, actions=[("add_tags", {"tags": ["off"]})])
    workflow = services.workflow_create(
        workspace=alice.workspace,
        actor=alice,
        name="Paused",
        trigger="ticket_created",
        is_active=False,
    )
    rule("ticket_created", workflow=workflow, actions=[("add_tags", {"tags": ["paused"]})])

    with hooks_run():
        ticket = write_in(customer_a)

    assert tags_of(ticket) == []


def test_another_workspaces_rules_never_touch_a_ticket(
    rule, charlie, customer_a, customer_b, hooks_run
) -> None:
    rule("ticket_created", by=charlie, actions=[("add_tags", {"tags": ["from-b"]})])

    with hooks_run():
        ticket_a = write_in(customer_a)
        ticket_b = write_in(customer_b)

    assert tags_of(ticket_a) == []
    assert tags_of(ticket_b) == ["from-b"]


# --- No loops ---------------------------------------------------------------------------------


def test_two_rules_that_undo_each_other_stop(rule, customer_a, bob, hooks_run) -> None:
    up = rule(
        "ticket_updated",
        conditions=[("priority", "is", "high")],
        actions=[("set_priority", {"priority": "urgent"})],
    )
    down = rule(
        "ticket_updated",
        conditions=[("priority", "is", "urgent")],
        actions=[("set_priority", {"priority": "high"})],
    )
    ticket = write_in(customer_a)

    with hooks_run():
        ticket_update(ticket=ticket, actor=Actor.for_agent(bob), priority="high")

    # bob sets high. In that evaluation up fires (urgent) and then down, which sees
    # urgent (high). up's change (chain [up]) finds priority high: down does not match, up
    # is in the chain. down's change (chain [down]) fires up again (urgent, chain
    # [down, up]), whose change finds both rules in its chain: the end.
    ticket.refresh_from_db()
    assert ticket.priority == "urgent"
    assert AutomationRun.objects.filter(automation=down).count() == 1
    chains = list(
        AutomationRun.objects.filter(automation=up).order_by("pk").values_list("chain", flat=True)
    )
    assert chains == [[], [down.pk]]


def test_a_rule_never_retriggers_itself(rule, customer_a, bob, hooks_run) -> None:
    # Every update adds a tag, which is itself an update.
    automation = rule("ticket_updated", actions=[("add_tags", {"tags": ["touched"]})])
    ticket = write_in(customer_a)

    with hooks_run():
        ticket_update(ticket=ticket, actor=Actor.for_agent(bob), priority="low")

    assert AutomationRun.objects.filter(automation=automation).count() == 1


def test_a_chain_of_rules_is_bounded(rule, customer_a, bob, hooks_run, settings) -> None:
    settings.AUTOMATION_MAX_CHAIN_DEPTH = 3
    # Each rule reacts to the previous one's tag with a tag of its own: a chain of six.
    # In reverse order, so each fires on the previous one's change, not in the same pass.
    for i in range(6):
        rule(
            "ticket_updated",
            conditions=[("tags", "contains", f"step{i}")] if i else [("priority", "is", "low")],
            actions=[("add_tags", {"tags": [f"step{i + 1}"]})],
            position=10 - i,
        )
    ticket = write_in(customer_a)

    with hooks_run():
        ticket_update(ticket=ticket, actor=Actor.for_agent(bob), priority="low")

    # bob's change starts it; three rules deep the chain stops.
    assert tags_of(ticket) == ["step1", "step2", "step3"]


# --- Failures ---------------------------------------------------------------------------------


def test_a_failing_action_is_recorded_and_the_others_still_run(
    rule, customer_a, workspace_a, hooks_run
) -> None:
    gone = agent_in(workspace_a, "gone@a.test", "Gone Agent")
    rule(
        "ticket_created",
        actions=[
            ("set_assignee", {"agent_id": gone.pk}),
            ("add_tags", {"tags": ["still-tagged"]}),
        ],
    )
    gone.is_active = False
    gone.save(update_fields=["is_active"])

    with hooks_run():
        ticket = write_in(customer_a, "Still created")

    ticket.refresh_from_db()
    assert ticket.subject == "Still created" and ticket.assignee is None
    assert tags_of(ticket) == ["still-tagged"]
    run = AutomationRun.objects.get()
    assert run.status == RunStatus.PARTIAL
    assert run.errors == [
        {
            "action_type": "set_assignee",
            "error": "That agent is deactivated.",
            "code": "agent_inactive",
        }
    ]
    history = TicketEvent.objects.get(ticket=ticket, kind=TicketEventKind.AUTOMATION)
    assert history.data["errors"] == run.errors


def test_an_unexpected_error_in_an_action_is_recorded_not_raised(
    rule, customer_a, hooks_run, monkeypatch
) -> None:
    rule("ticket_created", actions=[("add_note", {"body": "x"}), ("add_tags", {"tags": ["ok"]})])

    def broken(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("tickets.services.comment_create", broken)

    with hooks_run():
        ticket = write_in(customer_a)

    run = AutomationRun.objects.get()
    assert run.status == RunStatus.PARTIAL
    assert run.errors[0]["action_type"] == "add_note"
    assert "RuntimeError" in run.errors[0]["error"]
    assert tags_of(ticket) == ["ok"]


# --- Time rules -------------------------------------------------------------------------------


def test_a_time_rule_fires_once_per_ticket_not_on_every_tick(rule, customer_a) -> None:
    automation = rule(
        "time",
        conditions=[("hours_since_created", "gt", 2)],
        actions=[("add_tags", {"tags": ["old"]})],
    )
    ticket = write_in(customer_a)
    now = timezone.now()

    assert engine.run_time_rules(now=now) == 0  # too young
    later = now + timedelta(hours=3)
    assert engine.run_time_rules(now=later) == 1
    assert engine.run_time_rules(now=later + timedelta(minutes=1)) == 0
    assert engine.run_time_rules(now=later + timedelta(minutes=2)) == 0

    assert tags_of(ticket) == ["old"]
    run = AutomationRun.objects.get(automation=automation)
    assert run.trigger == "time" and run.window_key


def test_a_time_rule_fires_again_in_a_new_window(rule, customer_a, bob) -> None:
    rule(
        "time",
        conditions=[("status", "is", "open"), ("hours_since_updated", "gt", 24)],
        actions=[("add_note", {"body": "Nudge: no update for a day."})],
    )
    ticket = write_in(customer_a)
    ticket_update(ticket=ticket, actor=Actor.for_agent(bob), status="open")
    ticket.refresh_from_db()
    start = ticket.updated_at

    assert engine.run_time_rules(now=start + timedelta(hours=25)) == 1
    # The note updated the ticket: a new window, which opens 24 hours after that update.
    ticket.refresh_from_db()
    assert engine.run_time_rules(now=ticket.updated_at + timedelta(hours=1)) == 0
    assert engine.run_time_rules(now=ticket.updated_at + timedelta(hours=25)) == 1
    assert AutomationRun.objects.count() == 2


def test_a_time_rule_only_looks_at_its_own_workspace(rule, charlie, customer_a, customer_b) -> None:
    rule(
        "time",
        by=charlie,
        conditions=[("hours_since_created", "gt", 1)],
        actions=[("add_tags", {"tags": ["b-rule"]})],
    )
    ticket_a, ticket_b = write_in(customer_a), write_in(customer_b)

    assert engine.run_time_rules(now=timezone.now() + timedelta(hours=2)) == 1

    assert tags_of(ticket_a) == []
    assert tags_of(ticket_b) == ["b-rule"]


def test_time_rules_leave_closed_deleted_and_merged_tickets_alone(rule, customer_a, bob) -> None:
    rule(
        "time",
        conditions=[("hours_since_created", "gt", 1)],
        actions=[("add_tags", {"tags": ["seen"]})],
    )
    closed, live = write_in(customer_a), write_in(customer_a)
    ticket_update(ticket=closed, actor=Actor.for_agent(bob), status="closed")

    assert engine.run_time_rules(now=timezone.now() + timedelta(hours=2)) == 1
    assert tags_of(live) == ["seen"] and tags_of(closed) == []


def test_a_time_rule_without_time_conditions_fires_once_per_ticket(rule, customer_a) -> None:
    rule(
        "time",
        conditions=[("priority", "is", "normal")],
        actions=[("add_note", {"body": "Normal priority noted."})],
    )
    write_in(customer_a)

    fired = [engine.run_time_rules(now=timezone.now() + timedelta(minutes=m)) for m in range(3)]

    assert fired == [1, 0, 0]


def test_a_time_window_is_claimed_once_even_if_two_ticks_race(rule, customer_a) -> None:
    automation = rule(
        "time",
        conditions=[("hours_since_created", "gt", 1)],
        actions=[("add_tags", {"tags": ["x"]})],
    )
    ticket = write_in(customer_a)
    later = timezone.now() + timedelta(hours=2)
    facts = engine.facts_for(ticket, now=later)
    key = engine.window_key(automation, facts)

    first = engine.fire(automation, ticket, trigger="time", window=key, now=later)
    second = engine.fire(automation, ticket, trigger="time", window=key, now=later)

    assert first is not None and second is None
    assert AutomationRun.objects.count() == 1


def test_time_rules_in_a_stopping_workflow_fire_the_first_match_only(
    alice, rule, customer_a
) -> None:
    workflow = services.workflow_create(
        workspace=alice.workspace,
        actor=alice,
        name="Escalation",
        trigger="time",
        stop_after_first_match=True,
    )
    for i, hours in enumerate((48, 24)):
        rule(
            "time",
            workflow=workflow,
            position=i,
            conditions=[("hours_since_created", "gt", hours)],
            actions=[("add_tags", {"tags": [f"over-{hours}h"]})],
        )
    ticket = write_in(customer_a)
    now = timezone.now()

    engine.run_time_rules(now=now + timedelta(hours=30))
    assert tags_of(ticket) == ["over-24h"]
    engine.run_time_rules(now=now + timedelta(hours=50))
    assert tags_of(ticket) == ["over-24h", "over-48h"]
    # And later still: both windows fired, the first one stops the workflow.
    engine.run_time_rules(now=now + timedelta(hours=60))
    assert AutomationRun.objects.count() == 2


def test_a_time_rules_changes_trigger_event_rules(rule, customer_a, hooks_run) -> None:
    rule(
        "time",
        conditions=[("hours_since_created", "gt", 1)],
        actions=[("set_priority", {"priority": "urgent"})],
    )
    rule(
        "ticket_updated",
        conditions=[("priority", "is", "urgent")],
        actions=[("add_tags", {"tags": ["escalated"]})],
    )
    ticket = write_in(customer_a)

    with hooks_run():
        engine.run_time_rules(now=timezone.now() + timedelta(hours=2))

    assert tags_of(ticket) == ["escalated"]


# --- Dry run ----------------------------------------------------------------------------------


def test_the_dry_run_shows_what_would_happen_and_changes_nothing(
    alice, rule, customer_a, workspace_a, bob
) -> None:
    team = team_with(workspace_a, alice, bob)
    automation = rule(
        "ticket_created",
        conditions=[("subject", "contains", "printer"), ("priority", "is", "urgent")],
        match="any",
        actions=[
            ("set_status", {"status": "pending"}),
            ("assign_round_robin", {"team_id": team.pk}),
            ("add_tags", {"tags": ["hardware"]}),
            ("add_note", {"body": "Ticket {{ticket.number}} triaged"}),
            ("call_webhook", {"url": "https://hooks.example.com/x"}),
        ],
    )
    ticket = write_in(customer_a, "Printer on fire")
    before = (
        TicketEvent.objects.count(),
        AutomationRun.objects.count(),
        AssignmentCursor.objects.count(),
    )

    result = services.automation_test(
        workspace=workspace_a, actor=alice, automation=automation, ticket=ticket
    )

    assert result["matched"] is True
    assert [c["matched"] for c in result["conditions"]] == [True, False]
    assert result["conditions"][1]["actual"] == "normal"
    would = [a["would"] for a in result["actions"]]
    assert would[0] == {"field": "status", "old": "new", "new": "pending", "changes": True}
    assert would[1]["field"] == "assignee" and would[1]["new"] == min(alice.pk, bob.pk)
    assert would[2] == {"field": "tags", "old": [], "new": ["hardware"], "changes": True}
    assert would[3]["note"] == f"Ticket {ticket.number} triaged"
    assert would[4]["webhook"] == "https://hooks.example.com/x"
    assert would[4]["payload"]["ticket"]["number"] == ticket.number
    ticket.refresh_from_db()
    assert (ticket.status, ticket.assignee_id) == ("new", None)
    assert tags_of(ticket) == []
    after = (
        TicketEvent.objects.count(),
        AutomationRun.objects.count(),
        AssignmentCursor.objects.count(),
    )
    assert after == before
    assert Automation.objects.get(pk=automation.pk).run_count == 0
    assert not Workflow.objects.exists()
