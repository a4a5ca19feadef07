"""Settings → Automations & workflows: the list, the rule editor, its rows, the dry run."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from automation import services
from automation.models import (
    Automation,
    AutomationAction,
    AutomationCondition,
    AutomationRun,
    Workflow,
)
from enque.tests.factories import CategoryFactory, CustomerFactory, TeamFactory
from tickets.actors import Actor
from tickets.models import Comment, Ticket, TicketEvent
from tickets.services import ticket_create
from workspaces.models import Agent, Customer, Workspace

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def make_rule(workspace: Workspace, actor: Agent, **fields: Any) -> Automation:
    defaults: dict[str, Any] = {
        "name": "Fires are urgent",
        "trigger": "ticket_created",
        "conditions": [{"field": "subject", "operator": "contains", "value": "fire"}],
        "actions": [{"action_type": "set_priority", "params": {"priority": "urgent"}}],
    }
    return services.automation_create(workspace=workspace, actor=actor, **{**defaults, **fields})


def post_data(**overrides: Any) -> dict[str, Any]:
    """A rule as the editor posts it: one condition row (c1), one action row (a1)."""
    data: dict[str, Any] = {
        "name": "Billing mails",
        "description": "",
        "trigger": "ticket_created",
        "match": "all",
        "workflow": "",
        "is_active": "on",
        "position": "",
        "condition": ["c1"],
        "c-c1-field": "subject",
        "c-c1-operator": "contains",
        "c-c1-value": "invoice",
        "action": ["a1"],
        "a-a1-type": "set_priority",
        "a-a1-priority": "high",
    }
    data.update(overrides)
    return data


# --- Who may see it -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["settings_automations", "settings_automation_new", "settings_workflow_new"]
)
def test_agents_who_are_not_admins_get_404(bob_client: Client, name: str) -> None:
    assert bob_client.get(reverse(f"ui:{name}")).status_code == 404


def test_a_non_admin_cannot_open_or_change_a_rule(
    bob_client: Client, workspace_a: Workspace, alice: Agent
) -> None:
    rule = make_rule(workspace_a, alice)
    assert bob_client.get(reverse("ui:settings_automation", args=[rule.pk])).status_code == 404
    response = bob_client.post(reverse("ui:settings_automation_delete", args=[rule.pk]))
    assert response.status_code == 404
    response = bob_client.post(reverse("ui:settings_automation_dry_run"), post_data())
    assert response.status_code == 404
    assert Automation.objects.filter(pk=rule.pk).exists()


def test_charlie_can_neither_change_nor_dry_run_workspace_as_rules(
    charlie_client: Client, workspace_a: Workspace, alice: Agent
) -> None:
    rule = make_rule(workspace_a, alice)
    response = charlie_client.post(
        reverse("ui:settings_automation", args=[rule.pk]), post_data(name="Hacked")
    )
    assert response.status_code == 404
    response = charlie_client.post(reverse("ui:settings_automation_toggle", args=[rule.pk]))
    assert response.status_code == 404
    response = charlie_client.post(
        reverse("ui:settings_automation_dry_run"), post_data(automation=str(rule.pk))
    )
    assert response.status_code == 404
    rule.refresh_from_db()
    assert (rule.name, rule.is_active) == ("Fires are urgent", True)
    # ... and the list shows nothing of workspace A.
    response = charlie_client.get(reverse("ui:settings_automations"))
    assert b"Fires are urgent" not in response.content


# --- The list -----------------------------------------------------------------------------


def test_the_empty_list_says_what_automations_are(alice_client: Client) -> None:
    response = alice_client.get(reverse("ui:settings_automations"))
    assert response.status_code == 200
    content = response.content.decode()
    assert "No event automations yet" in content
    assert "No time-based automations yet" in content
    assert "No workflows" in content


def test_the_list_shows_rules_by_kind_with_their_state(
    alice_client: Client, workspace_a: Workspace, alice: Agent, ticket_a: Ticket
) -> None:
    workflow = services.workflow_create(
        workspace=workspace_a, actor=alice, name="Triage", trigger="ticket_created"
    )
    make_rule(workspace_a, alice, workflow=workflow)
    make_rule(
        workspace_a,
        alice,
        name="Close stale tickets",
        trigger="time",
        is_active=False,
        conditions=[{"field": "hours_since_customer_reply", "operator": "gt", "value": 72}],
        actions=[{"action_type": "set_status", "params": {"status": "closed"}}],
    )
    content = alice_client.get(reverse("ui:settings_automations")).content.decode()
    assert "Fires are urgent" in content
    assert "Close stale tickets" in content
    assert "Triage" in content
    assert "1 condition, 1 action" in content
    assert content.index("Event automations") < content.index("Fires are urgent")
    assert content.index("Time-based automations") < content.index("Close stale tickets")
    assert 'aria-pressed="false"' in content  # the stale-ticket rule is off


def _list_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("ui:settings_automations"))
    assert response.status_code == 200
    return len(queries)


def test_the_list_costs_the_same_queries_with_more_rules(
    alice_client: Client, workspace_a: Workspace, alice: Agent
) -> None:
    team = TeamFactory(workspace=workspace_a)
    workflow = services.workflow_create(
        workspace=workspace_a, actor=alice, name="Triage", trigger="ticket_created"
    )

    def add(n: int) -> None:
        for i in range(n):
            make_rule(
                workspace_a,
                alice,
                name=f"Rule {Automation.objects.count()} {i}",
                workflow=workflow if i % 2 else None,
                conditions=[
                    {"field": "subject", "operator": "contains", "value": "x"},
                    {"field": "team", "operator": "is", "value": team.pk},
                ],
                actions=[
                    {"action_type": "set_team", "params": {"team_id": team.pk}},
                    {"action_type": "add_tags", "params": {"tags": ["a"]}},
                ],
            )
        services.workflow_create(
            workspace=workspace_a,
            actor=alice,
            name=f"Flow {Workflow.objects.count()}",
            trigger="time",
        )

    add(2)
    few = _list_queries(alice_client)
    add(12)
    many = _list_queries(alice_client)
    # session, user, membership; workflows with their counts; rules with their workflow
    # and counts; the workspace switcher — whatever the number of rules.
    assert few == many == 6


def test_the_toggle_turns_a_rule_off_and_on_through_the_service(
    alice_client: Client, workspace_a: Workspace, alice: Agent
) -> None:
    rule = make_rule(workspace_a, alice)
    url = reverse("ui:settings_automation_toggle", args=[rule.pk])
    assert alice_client.post(url).status_code == 302
    rule.refresh_from_db()
    assert rule.is_active is False
    alice_client.post(url)
    rule.refresh_from_db()
    assert rule.is_active is True


def test_a_toggle_is_a_post(alice_client: Client, workspace_a: Workspace, alice: Agent) -> None:
    rule = make_rule(workspace_a, alice)
    url = reverse("ui:settings_automation_toggle", args=[rule.pk])
    assert alice_client.get(url).status_code == 405


# --- The editor ---------------------------------------------------------------------------


def test_the_editor_shows_a_rule_with_inputs_fitting_each_row(
    alice_client: Client, workspace_a: Workspace, alice: Agent, workspace_b: Workspace
) -> None:
    team = TeamFactory(workspace=workspace_a, name="Billing")
    TeamFactory(workspace=workspace_b, name="Globex team")
    customer = CustomerFactory(workspace=workspace_a, email="vip@customer.test")
    rule = make_rule(
        workspace_a,
        alice,
        conditions=[
            {"field": "status", "operator": "in", "value": ["new", "open"]},
            {"field": "customer", "operator": "is", "value": customer.pk},
            {"field": "hours_since_created", "operator": "gt", "value": 1.5},
        ],
        actions=[
            {"action_type": "set_team", "params": {"team_id": team.pk}},
            {"action_type": "add_tags", "params": {"tags": ["billing", "vip"]}},
        ],
    )
    content = alice_client.get(reverse("ui:settings_automation", args=[rule.pk])).content.decode()
    # status "is one of": a multiple select with both chosen.
    assert "multiple" in content
    assert '<option value="new" selected>' in content
    assert '<option value="open" selected>' in content
    # customer: shown by address, not by id.
    assert 'value="vip@customer.test"' in content
    # hours: a number input.
    assert 'type="number"' in content and 'value="1.5"' in content
    # team: this workspace's teams only.
    assert f'<option value="{team.pk}" selected>Billing</option>' in content
    assert "Globex team" not in content
    assert 'value="billing, vip"' in content


def test_creating_a_rule_goes_through_the_service(
    alice_client: Client, workspace_a: Workspace
) -> None:
    response = alice_client.post(reverse("ui:settings_automation_new"), post_data())
    rule = Automation.objects.get(workspace=workspace_a, name="Billing mails")
    assert response.status_code == 302
    assert response["Location"] == reverse("ui:settings_automation", args=[rule.pk])
    condition = rule.conditions.get()
    assert (condition.field, condition.operator, condition.value) == (
        "subject",
        "contains",
        "invoice",
    )
    assert rule.actions.get().params == {"priority": "high"}


def test_saving_replaces_conditions_and_actions_in_page_order(
    alice_client: Client, workspace_a: Workspace, alice: Agent
) -> None:
    rule = make_rule(workspace_a, alice)
    category = CategoryFactory(workspace=workspace_a, name="Hardware")
    data = post_data(
        name="Renamed",
        match="any",
        condition=["zz", "aa"],
        **{
            "c-zz-field": "priority",
            "c-zz-operator": "gt",
            "c-zz-value": "normal",
            "c-aa-field": "tags",
            "c-aa-operator": "in",
            "c-aa-value": "vip\nbilling",
        },
        action=["a1", "b2"],
        **{"b2-ignored": "x", "a-b2-type": "set_category", "a-b2-category_id": str(category.pk)},
    )
    data.pop("c-c1-field")
    response = alice_client.post(reverse("ui:settings_automation", args=[rule.pk]), data)
    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.name, rule.match) == ("Renamed", "any")
    assert [(c.field, c.operator, c.value) for c in rule.conditions.all()] == [
        ("priority", "gt", "normal"),
        ("tags", "in", ["vip", "billing"]),
    ]
    assert [(a.action_type, a.params) for a in rule.actions.all()] == [
        ("set_priority", {"priority": "high"}),
        ("set_category", {"category_id": category.pk}),
    ]


def test_errors_show_next_to_the_rows_they_concern(
    alice_client: Client, workspace_a: Workspace, alice: Agent, workspace_b: Workspace
) -> None:
    rule = make_rule(workspace_a, alice)
    foreign_team = TeamFactory(workspace=workspace_b)
    data = post_data(
        condition=["c1", "c2"],
        **{
            "c-c1-operator": "matches",
            "c-c1-value": "([unclosed",
            "c-c2-field": "hours_since_created",
            "c-c2-operator": "gt",
            "c-c2-value": "soon",
        },
        action=["a1"],
        **{"a-a1-type": "set_team", "a-a1-team_id": str(foreign_team.pk)},
    )
    response = alice_client.post(reverse("ui:settings_automation", args=[rule.pk]), data)
    assert response.status_code == 400
    content = response.content.decode()
    assert "Not a valid regular expression" in content
    assert "A number of hours, e.g. 4 or 0.5." in content
    assert "Unknown team in this workspace." in content
    # Each error sits in its own row (the row's element carries the error class).
    c1 = content.index('id="c-c1"')
    c2 = content.index('id="c-c2"')
    a1 = content.index('id="a-a1"')
    assert c1 < content.index("Not a valid regular expression") < c2
    assert c2 < content.index("A number of hours") < a1
    assert a1 < content.index("Unknown team in this workspace.")
    # What was typed stays.
    assert 'value="([unclosed"' in content
    rule.refresh_from_db()
    assert rule.name == "Fires are urgent"
    assert rule.conditions.get().value == "fire"


def test_a_service_refusal_lands_on_its_field(
    alice_client: Client, workspace_a: Workspace, alice: Agent
) -> None:
    # A time-based rule without conditions: automation_create refuses it.
    data = post_data(trigger="time", condition=[])
    response = alice_client.post(reverse("ui:settings_automation_new"), data)
    assert response.status_code == 400
    assert "A time-based rule needs at least one condition" in response.content.decode()
    # A rule whose workflow runs on another trigger.
    workflow = services.workflow_create(
        workspace=workspace_a, actor=alice, name="Nightly", trigger="time"
    )
    response = alice_client.post(
        reverse("ui:settings_automation_new"), post_data(workflow=str(workflow.pk))
    )
    assert response.status_code == 400
    assert "its automations must use the same trigger" in response.content.decode()
    # No actions at all.
    response = alice_client.post(reverse("ui:settings_automation_new"), post_data(action=[]))
    assert "A rule needs at least one action." in response.content.decode()
    assert not Automation.objects.filter(name="Billing mails").exists()


def test_a_webhook_secret_is_write_only_and_kept_when_left_empty(
    alice_client: Client, workspace_a: Workspace, alice: Agent
) -> None:
    data = post_data(
        **{
            "a-a1-type": "call_webhook",
            "a-a1-url": "https://hooks.example.com/enque",
            "a-a1-secret": "s3cret-value",
        }
    )
    alice_client.post(reverse("ui:settings_automation_new"), data)
    rule = Automation.objects.get(name="Billing mails")
    assert rule.actions.get().secret == "s3cret-value"
    page = alice_client.get(reverse("ui:settings_automation", args=[rule.pk])).content.decode()
    assert "s3cret-value" not in page
    assert "A secret is set" in page
    data["a-a1-secret"] = ""
    data["a-a1-has_secret"] = "1"
    alice_client.post(reverse("ui:settings_automation", args=[rule.pk]), data)
    assert rule.actions.get().secret == "s3cret-value"


def test_deleting_a_rule(alice_client: Client, workspace_a: Workspace, alice: Agent) -> None:
    rule = make_rule(workspace_a, alice)
    page = alice_client.get(reverse("ui:settings_automation", args=[rule.pk])).content.decode()
    assert "data-confirm=" in page  # the browser asks first
    response = alice_client.post(reverse("ui:settings_automation_delete", args=[rule.pk]))
    assert response.status_code == 302
    assert not Automation.objects.filter(pk=rule.pk).exists()
    assert not AutomationCondition.objects.filter(automation_id=rule.pk).exists()


# --- Rows (htmx) --------------------------------------------------------------------------


def test_a_new_condition_row_and_a_row_redrawn_for_another_field(
    alice_client: Client, workspace_a: Workspace
) -> None:
    team = TeamFactory(workspace=workspace_a, name="Support")
    url = reverse("ui:settings_automation_row")
    fresh = alice_client.get(url, {"kind": "condition"}, **HTMX)
    assert fresh.status_code == 200
    assert b'name="condition"' in fresh.content
    # The field changed to team: the operators are the team's, the value a team select.
    redrawn = alice_client.get(
        url,
        {"kind": "condition", "key": "k1", "c-k1-field": "team", "c-k1-operator": "contains"},
        **HTMX,
    ).content.decode()
    assert 'value="is_set"' in redrawn
    assert 'value="contains"' not in redrawn
    assert f'<option value="{team.pk}" >Support</option>' in redrawn
    # A flag field: yes / no.
    flag = alice_client.get(
        url, {"kind": "condition", "key": "k1", "c-k1-field": "sla_breached"}, **HTMX
    ).content.decode()
    assert '<option value="true" selected>Yes</option>' in flag
    # A key the editor did not make is replaced by a fresh one.
    odd = alice_client.get(url, {"kind": "condition", "key": "../x y"}, **HTMX).content.decode()
    assert "../x y" not in odd and 'name="condition"' in odd


def test_an_action_row_fits_its_type(alice_client: Client, workspace_a: Workspace) -> None:
    url = reverse("ui:settings_automation_row")
    row = alice_client.get(
        url, {"kind": "action", "key": "k2", "a-k2-type": "notify_agents"}, **HTMX
    ).content.decode()
    for name in ("message", "agent_ids", "team_id", "assignee"):
        assert f'name="a-k2-{name}"' in row
    assert alice_client.get(url, {"kind": "nonsense"}).status_code == 404


# --- The dry run --------------------------------------------------------------------------


def _counts() -> tuple[int, ...]:
    return (
        Ticket.objects.count(),
        Comment.objects.count(),
        TicketEvent.objects.count(),
        AutomationRun.objects.count(),
        Automation.objects.count(),
        AutomationCondition.objects.count(),
        AutomationAction.objects.count(),
    )


def test_the_dry_run_shows_matches_and_changes_and_writes_nothing(
    alice_client: Client, workspace_a: Workspace, alice: Agent, customer_a: Customer
) -> None:
    rule = make_rule(workspace_a, alice)
    team = TeamFactory(workspace=workspace_a, name="Facilities")
    customer = Actor.for_customer(customer_a)
    fire = ticket_create(
        workspace=workspace_a,
        actor=customer,
        subject="Office on fire",
        body_text="Help",
        customer=customer_a,
    )
    ticket_create(
        workspace=workspace_a,
        actor=customer,
        subject="Invoice question",
        body_text="Hi",
        customer=customer_a,
    )
    before = _counts()
    state = list(Ticket.objects.values_list("priority", "team_id", "status"))
    # The edited rule (unsaved): a changed priority and a new "set team" action.
    data = post_data(
        automation=str(rule.pk),
        **{"c-c1-value": "fire", "a-a1-priority": "high"},
        action=["a1", "a2"],
        **{"a-a2-type": "set_team", "a-a2-team_id": str(team.pk)},
    )
    response = alice_client.post(reverse("ui:settings_automation_dry_run"), data, **HTMX)
    assert response.status_code == 200
    content = response.content.decode()
    assert "1 of 2" in content
    assert f'data-dry-run-match="{fire.number}"' in content
    assert "Priority: normal → high" in content
    assert "Team: none → Facilities" in content
    assert "Subject is Invoice question" in content  # why the other does not match
    assert _counts() == before
    assert list(Ticket.objects.values_list("priority", "team_id", "status")) == state
    rule.refresh_from_db()
    assert rule.actions.get().params == {"priority": "urgent"}


def test_the_dry_run_on_one_ticket_and_on_a_missing_one(
    alice_client: Client, workspace_a: Workspace, ticket_a: Ticket, ticket_b: Ticket
) -> None:
    url = reverse("ui:settings_automation_dry_run")
    one = alice_client.post(url, post_data(ticket=str(ticket_a.number)), **HTMX)
    assert f"Ticket #{ticket_a.number} <strong>would not match</strong>" in one.content.decode()
    missing = alice_client.post(url, post_data(ticket="9999"), **HTMX)
    assert "There is no ticket #9999 in this workspace." in missing.content.decode()


def test_the_dry_run_of_a_rule_with_errors_redraws_the_editor(
    alice_client: Client, workspace_a: Workspace
) -> None:
    data = post_data(
        **{"c-c1-field": "hours_since_created", "c-c1-operator": "gt", "c-c1-value": "x"}
    )
    before = _counts()
    response = alice_client.post(reverse("ui:settings_automation_dry_run"), data, **HTMX)
    assert response.status_code == 422
    assert response["HX-Retarget"] == "#rule-editor"
    assert "A number of hours, e.g. 4 or 0.5." in response.content.decode()
    assert _counts() == before


# --- Workflows ----------------------------------------------------------------------------


def test_creating_editing_and_deleting_a_workflow(
    alice_client: Client, workspace_a: Workspace, alice: Agent
) -> None:
    response = alice_client.post(
        reverse("ui:settings_workflow_new"),
        {
            "name": "Triage",
            "trigger": "ticket_created",
            "is_active": "on",
            "stop_after_first_match": "on",
        },
    )
    workflow = Workflow.objects.get(workspace=workspace_a, name="Triage")
    assert response["Location"] == reverse("ui:settings_workflow", args=[workflow.pk])
    assert workflow.stop_after_first_match is True
    rule = make_rule(workspace_a, alice, workflow=workflow)
    page = alice_client.get(reverse("ui:settings_workflow", args=[workflow.pk])).content.decode()
    assert "Fires are urgent" in page
    # Its rules run on ticket_created: the trigger cannot change under them.
    response = alice_client.post(
        reverse("ui:settings_workflow", args=[workflow.pk]), {"name": "Triage", "trigger": "time"}
    )
    assert response.status_code == 400
    assert "change or move them first" in response.content.decode()
    # A duplicate name is refused on the name field.
    services.workflow_create(workspace=workspace_a, actor=alice, name="Other", trigger="time")
    response = alice_client.post(
        reverse("ui:settings_workflow", args=[workflow.pk]),
        {"name": "other", "trigger": "ticket_created"},
    )
    assert "A workflow with this name exists." in response.content.decode()
    alice_client.post(reverse("ui:settings_workflow_delete", args=[workflow.pk]))
    assert not Workflow.objects.filter(pk=workflow.pk).exists()
    rule.refresh_from_db()
    assert rule.workflow_id is None


def test_a_new_rule_from_a_workflow_takes_its_trigger(
    alice_client: Client, workspace_a: Workspace, alice: Agent
) -> None:
    workflow = services.workflow_create(
        workspace=workspace_a, actor=alice, name="Nightly", trigger="time"
    )
    page = alice_client.get(
        reverse("ui:settings_automation_new"), {"workflow": workflow.pk}
    ).content.decode()
    assert '<option value="time" selected>' in page
    assert f'<option value="{workflow.pk}" selected>' in page


def test_the_dry_run_of_a_time_rule_knows_what_already_fired(
    alice_client: Client, workspace_a: Workspace, alice: Agent, customer_a: Customer
) -> None:
    from automation import engine
    from tickets.services import ticket_update

    customer = Actor.for_customer(customer_a)
    stale = ticket_create(
        workspace=workspace_a, actor=customer, subject="Stale", body_text="Hi", customer=customer_a
    )
    closed = ticket_create(
        workspace=workspace_a, actor=customer, subject="Done", body_text="Hi", customer=customer_a
    )
    ticket_update(ticket=closed, actor=Actor.for_agent(alice), status="closed")
    rule = make_rule(
        workspace_a,
        alice,
        trigger="time",
        conditions=[{"field": "hours_since_created", "operator": "gt", "value": 0}],
        actions=[{"action_type": "add_tags", "params": {"tags": ["stale"]}}],
    )
    engine.run_time_rules(workspace_id=workspace_a.pk)
    assert AutomationRun.objects.filter(automation=rule, ticket=stale).exists()
    data = post_data(
        automation=str(rule.pk),
        trigger="time",
        **{"c-c1-field": "hours_since_created", "c-c1-operator": "gt", "c-c1-value": "0"},
    )
    before = _counts()
    content = alice_client.post(
        reverse("ui:settings_automation_dry_run"), data, **HTMX
    ).content.decode()
    assert "1 of 1" in content  # the closed ticket is not looked at
    assert "already fired for this ticket in this time window" in content
    one = alice_client.post(
        reverse("ui:settings_automation_dry_run"), {**data, "ticket": closed.number}, **HTMX
    ).content.decode()
    assert "time-based rules do not look at closed tickets" in one
    assert _counts() == before
