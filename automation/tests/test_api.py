"""``/v1/workflows``, ``/v1/automations``, ``/v1/business-hours``, ``/v1/sla-policies``:
nested writes validated with errors that name the part, admins only for configuration,
Charlie (another workspace's admin) gets 404, and lists cost the same for 2 or 6 rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from automation import services
from automation.models import (
    Automation,
    AutomationAction,
    AutomationRun,
    BusinessHours,
    SLAPolicy,
    Workflow,
)
from automation.tests.support import team_with, write_in
from tickets.tests.api_support import error, light_agent

pytestmark = pytest.mark.django_db

RULE = {
    "name": "Invoices to Billing",
    "trigger": "ticket_created",
    "match": "any",
    "conditions": [
        {"field": "subject", "operator": "contains", "value": "invoice"},
        {"field": "priority", "operator": "gt", "value": "normal"},
    ],
    "actions": [
        {"action_type": "add_tags", "params": {"tags": ["billing"]}},
        {"action_type": "set_priority", "params": {"priority": "high"}},
    ],
}


def count_queries(call: Callable[[], Any]) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = call()
    assert response.status_code == 200, response.content
    return len(captured)


# --- Automations ------------------------------------------------------------------------------


def test_create_and_read_a_rule_with_its_conditions_and_actions(client_for, alice) -> None:
    client = client_for(alice)
    created = client.post("/v1/automations", RULE)

    assert created.status_code == 201, created.content
    body = created.json()
    assert body["name"] == "Invoices to Billing" and body["match"] == "any"
    assert [(c["field"], c["operator"], c["value"]) for c in body["conditions"]] == [
        ("subject", "contains", "invoice"),
        ("priority", "gt", "normal"),
    ]
    assert [a["action_type"] for a in body["actions"]] == ["add_tags", "set_priority"]
    assert client.get(f"/v1/automations/{body['id']}").json() == body


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {"conditions": [{"field": "subject", "operator": "gt", "value": 1}]},
            "conditions.0.operator",
        ),
        (
            {
                "conditions": [
                    RULE["conditions"][0],
                    {"field": "status", "operator": "is", "value": "zzz"},
                ]
            },
            "conditions.1.value",
        ),
        ({"conditions": [{"field": "mood", "operator": "is", "value": 1}]}, "conditions.0.field"),
        (
            {"actions": [{"action_type": "set_team", "params": {"team_id": 999999}}]},
            "actions.0.params.team_id",
        ),
        ({"actions": [{"action_type": "dance", "params": {}}]}, "actions.0.action_type"),
        (
            {"actions": [{"action_type": "add_tags", "params": {"tags": ["x"], "colour": "red"}}]},
            "actions.0.params.colour",
        ),
        ({"actions": []}, "actions"),
        ({"trigger": "time", "conditions": []}, "conditions"),
        ({"trigger": "whenever"}, "trigger"),
    ],
)
def test_a_rule_that_does_not_fit_is_a_400_naming_the_part(client_for, alice, change, field):
    response = client_for(alice).post("/v1/automations", {**RULE, **change})
    assert response.status_code == 400, response.content
    assert field in error(response)["fields"], error(response)
    assert not Automation.objects.exists()


def test_patch_replaces_the_nested_rows(client_for, alice) -> None:
    client = client_for(alice)
    rule_id = client.post("/v1/automations", RULE).json()["id"]

    patched = client.patch(
        f"/v1/automations/{rule_id}",
        {
            "conditions": [{"field": "channel", "operator": "is", "value": "web"}],
            "is_active": False,
        },
    )

    assert patched.status_code == 200, patched.content
    body = patched.json()
    assert [c["field"] for c in body["conditions"]] == ["channel"]
    assert [a["action_type"] for a in body["actions"]] == ["add_tags", "set_priority"]
    assert body["is_active"] is False


def test_a_webhook_secret_is_write_only_and_kept(client_for, alice) -> None:
    client = client_for(alice)
    hook = {"action_type": "call_webhook", "params": {"url": "https://hooks.example.com/e"}}
    created = client.post("/v1/automations", {**RULE, "actions": [{**hook, "secret": "s3cret"}]})
    body = created.json()
    assert body["actions"][0] == {
        "id": body["actions"][0]["id"],
        "action_type": "call_webhook",
        "params": {"url": "https://hooks.example.com/e"},
        "has_secret": True,
    }
    assert "s3cret" not in created.content.decode()

    client.patch(f"/v1/automations/{body['id']}", {"actions": [hook]})

    assert AutomationAction.objects.get(automation_id=body["id"]).secret == "s3cret"


def test_the_dry_run_endpoint(client_for, alice, customer_a) -> None:
    client = client_for(alice)
    rule_id = client.post("/v1/automations", RULE).json()["id"]
    ticket = write_in(customer_a, "Invoice missing")

    response = client.post(f"/v1/automations/{rule_id}/test", {"ticket": ticket.number})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["matched"] is True
    assert [c["matched"] for c in body["conditions"]] == [True, False]
    assert body["actions"][0]["would"] == {
        "field": "tags",
        "old": [],
        "new": ["billing"],
        "changes": True,
    }
    ticket.refresh_from_db()
    assert ticket.priority == "normal" and not AutomationRun.objects.exists()
    missing = client.post(f"/v1/automations/{rule_id}/test", {"ticket": 999})
    assert missing.status_code == 400 and error(missing)["code"] == "invalid_reference"


def test_a_rules_runs(client_for, alice, customer_a, hooks_run) -> None:
    client = client_for(alice)
    rule_id = client.post("/v1/automations", RULE).json()["id"]
    with hooks_run():
        ticket = write_in(customer_a, "Invoice 7")

    runs = client.get(f"/v1/automations/{rule_id}/runs").json()["results"]

    assert len(runs) == 1
    assert runs[0]["ticket"] == ticket.number and runs[0]["status"] == "succeeded"


def test_agents_may_not_configure_rules(client_for, bob, alice) -> None:
    rule = services.automation_create(
        workspace=alice.workspace,
        actor=alice,
        name="R",
        trigger="ticket_created",
        actions=[{"action_type": "add_tags", "params": {"tags": ["x"]}}],
    )
    client = client_for(bob)
    for response in (
        client.get("/v1/automations"),
        client.get(f"/v1/automations/{rule.pk}"),
        client.post("/v1/automations", RULE),
        client.get("/v1/workflows"),
    ):
        assert response.status_code == 403
        assert error(response)["code"] == "admin_required"


def test_charlie_gets_404_for_automations_and_workflows(client_for, alice, charlie, customer_a):
    client = client_for(alice)
    rule_id = client.post("/v1/automations", RULE).json()["id"]
    workflow_id = client.post(
        "/v1/workflows", {"name": "Flow", "trigger": "ticket_created"}
    ).json()["id"]
    ticket = write_in(customer_a)
    charlies = client_for(charlie)

    for response in (
        charlies.get(f"/v1/automations/{rule_id}"),
        charlies.patch(f"/v1/automations/{rule_id}", {"name": "Mine now"}),
        charlies.delete(f"/v1/automations/{rule_id}"),
        charlies.post(f"/v1/automations/{rule_id}/test", {"ticket": ticket.number}),
        charlies.get(f"/v1/automations/{rule_id}/runs"),
        charlies.get(f"/v1/workflows/{workflow_id}"),
        charlies.patch(f"/v1/workflows/{workflow_id}", {"name": "x"}),
        charlies.delete(f"/v1/workflows/{workflow_id}"),
    ):
        assert response.status_code == 404, response.content
    assert charlies.get("/v1/automations").json()["results"] == []
    assert Automation.objects.get(pk=rule_id).name == RULE["name"]
    assert Workflow.objects.filter(pk=workflow_id).exists()


def test_another_workspaces_references_are_refused(client_for, alice, charlie) -> None:
    team_b = team_with(charlie.workspace, charlie)
    workflow_b = services.workflow_create(
        workspace=charlie.workspace, actor=charlie, name="B", trigger="ticket_created"
    )
    client = client_for(alice)
    bad_team = client.post(
        "/v1/automations",
        {**RULE, "actions": [{"action_type": "set_team", "params": {"team_id": team_b.pk}}]},
    )
    bad_workflow = client.post("/v1/automations", {**RULE, "workflow_id": workflow_b.pk})
    assert error(bad_team)["code"] == "invalid_reference"
    assert "actions.0.params.team_id" in error(bad_team)["fields"]
    assert "workflow_id" in error(bad_workflow)["fields"]


def test_the_automation_list_costs_the_same_for_2_or_6_rules(client_for, alice) -> None:
    client = client_for(alice)
    for i in range(2):
        client.post("/v1/automations", {**RULE, "name": f"R{i}"})
    two = count_queries(lambda: client.get("/v1/automations"))
    for i in range(2, 6):
        client.post("/v1/automations", {**RULE, "name": f"R{i}"})
    # The token's agent, then: the rules, their conditions, their actions.
    assert count_queries(lambda: client.get("/v1/automations")) == two


# --- Workflows --------------------------------------------------------------------------------


def test_workflows(client_for, alice) -> None:
    client = client_for(alice)
    created = client.post(
        "/v1/workflows",
        {"name": "Triage", "trigger": "ticket_created", "stop_after_first_match": True},
    )
    assert created.status_code == 201, created.content
    workflow_id = created.json()["id"]
    client.post("/v1/automations", {**RULE, "workflow_id": workflow_id})

    listed = client.get("/v1/workflows").json()["results"]
    assert listed[0]["automation_count"] == 1 and listed[0]["stop_after_first_match"] is True
    duplicate = client.post("/v1/workflows", {"name": "TRIAGE", "trigger": "ticket_created"})
    assert duplicate.status_code == 409
    mismatch = client.post(
        "/v1/automations",
        {**RULE, "trigger": "customer_replied", "workflow_id": workflow_id},
    )
    assert mismatch.status_code == 400 and "trigger" in error(mismatch)["fields"]
    in_use = client.patch(f"/v1/workflows/{workflow_id}", {"trigger": "agent_replied"})
    assert in_use.status_code == 409
    assert client.delete(f"/v1/workflows/{workflow_id}").status_code == 204
    assert Automation.objects.get().workflow is None


def test_the_workflow_list_costs_the_same_for_2_or_6(client_for, alice) -> None:
    client = client_for(alice)
    for i in range(2):
        client.post("/v1/workflows", {"name": f"W{i}", "trigger": "time"})
    two = count_queries(lambda: client.get("/v1/workflows"))
    for i in range(2, 6):
        client.post("/v1/workflows", {"name": f"W{i}", "trigger": "time"})
    assert count_queries(lambda: client.get("/v1/workflows")) == two


# --- Business hours ---------------------------------------------------------------------------

HOURS = {
    "name": "Berlin office",
    "timezone": "Europe/Berlin",
    "is_default": True,
    "slots": [{"weekday": d, "opens_at": "09:00", "closes_at": "17:00"} for d in range(5)],
    "holidays": [{"date": "2026-12-25", "name": "Christmas"}],
}


def test_business_hours(client_for, alice, bob) -> None:
    client = client_for(alice)
    created = client.post("/v1/business-hours", HOURS)
    assert created.status_code == 201, created.content
    body = created.json()
    assert len(body["slots"]) == 5 and body["slots"][0] == {
        "weekday": 0,
        "opens_at": "09:00",
        "closes_at": "17:00",
    }
    assert body["holidays"] == [{"date": "2026-12-25", "name": "Christmas"}]

    second = client.post("/v1/business-hours", {**HOURS, "name": "Night shift"})
    assert second.json()["is_default"] is True
    assert BusinessHours.objects.get(pk=body["id"]).is_default is False  # handed over

    patched = client.patch(f"/v1/business-hours/{body['id']}", {"holidays": []})
    assert patched.json()["holidays"] == [] and len(patched.json()["slots"]) == 5
    # Members read; only admins write.
    assert client_for(bob).get("/v1/business-hours").status_code == 200
    assert client_for(bob).post("/v1/business-hours", HOURS).status_code == 403


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        (
            {"slots": [{"weekday": 0, "opens_at": "17:00", "closes_at": "09:00"}]},
            "slots.0.closes_at",
        ),
        (
            {
                "slots": [
                    {"weekday": 1, "opens_at": "09:00", "closes_at": "13:00"},
                    {"weekday": 1, "opens_at": "12:00", "closes_at": "17:00"},
                ]
            },
            "slots.1.opens_at",
        ),
        ({"slots": [{"weekday": 7, "opens_at": "09:00", "closes_at": "17:00"}]}, "slots.0.weekday"),
        ({"holidays": [{"date": "2026-12-25"}, {"date": "2026-12-25"}]}, "holidays.1.date"),
    ],
)
def test_business_hours_that_do_not_fit(client_for, alice, change, field) -> None:
    response = client_for(alice).post("/v1/business-hours", {**HOURS, **change})
    assert response.status_code == 400, response.content
    assert field in error(response)["fields"]


def test_the_business_hours_list_costs_the_same_for_2_or_6(client_for, alice) -> None:
    client = client_for(alice)
    for i in range(2):
        client.post("/v1/business-hours", {**HOURS, "name": f"H{i}"})
    two = count_queries(lambda: client.get("/v1/business-hours"))
    for i in range(2, 6):
        client.post("/v1/business-hours", {**HOURS, "name": f"H{i}"})
    # The token's agent, then: the schedules, their slots, their holidays.
    assert count_queries(lambda: client.get("/v1/business-hours")) == two


# --- SLA policies -----------------------------------------------------------------------------

POLICY = {
    "name": "Standard",
    "targets": [
        {"priority": "normal", "first_response_minutes": 60, "resolution_minutes": 480},
        {"priority": "urgent", "first_response_minutes": 15},
    ],
}


def test_sla_policies(client_for, alice, bob, workspace_a) -> None:
    client = client_for(alice)
    hours_id = client.post("/v1/business-hours", HOURS).json()["id"]
    created = client.post("/v1/sla-policies", {**POLICY, "business_hours_id": hours_id})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["business_hours_id"] == hours_id
    assert body["targets"][1] == {
        "priority": "urgent",
        "first_response_minutes": 15,
        "resolution_minutes": None,
    }
    patched = client.patch(
        f"/v1/sla-policies/{body['id']}",
        {"targets": [{"priority": "low", "resolution_minutes": 2880}], "business_hours_id": None},
    )
    assert [t["priority"] for t in patched.json()["targets"]] == ["low"]
    assert patched.json()["business_hours_id"] is None
    assert client_for(bob).get(f"/v1/sla-policies/{body['id']}").status_code == 200
    assert client_for(bob).delete(f"/v1/sla-policies/{body['id']}").status_code == 403
    assert client.delete(f"/v1/sla-policies/{body['id']}").status_code == 204


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"targets": []}, "targets"),
        ({"targets": [{"priority": "normal"}]}, "targets.0.first_response_minutes"),
        (
            {"targets": [{"priority": "normal", "resolution_minutes": 5}] * 2},
            "targets.1.priority",
        ),
        ({"targets": [{"priority": "asap", "resolution_minutes": 5}]}, "targets.0.priority"),
        ({"company_id": 999_999}, "company_id"),
    ],
)
def test_policies_that_do_not_fit(client_for, alice, change, field) -> None:
    response = client_for(alice).post("/v1/sla-policies", {**POLICY, **change})
    assert response.status_code == 400, response.content
    assert field in error(response)["fields"]


def test_charlie_gets_404_for_schedules_and_policies(client_for, alice, charlie) -> None:
    client = client_for(alice)
    hours_id = client.post("/v1/business-hours", HOURS).json()["id"]
    policy_id = client.post("/v1/sla-policies", POLICY).json()["id"]
    charlies = client_for(charlie)
    for path in (f"/v1/business-hours/{hours_id}", f"/v1/sla-policies/{policy_id}"):
        assert charlies.get(path).status_code == 404
        assert charlies.patch(path, {"name": "x"}).status_code == 404
        assert charlies.delete(path).status_code == 404
    assert charlies.get("/v1/sla-policies").json()["results"] == []
    # Nor may Charlie point a policy of his at A's business hours.
    stolen = charlies.post("/v1/sla-policies", {**POLICY, "business_hours_id": hours_id})
    assert stolen.status_code == 400 and error(stolen)["code"] == "invalid_reference"
    assert SLAPolicy.objects.count() == 1 and BusinessHours.objects.count() == 1


def test_the_policy_list_costs_the_same_for_2_or_6(client_for, alice) -> None:
    client = client_for(alice)
    for i in range(2):
        client.post("/v1/sla-policies", {**POLICY, "name": f"P{i}"})
    two = count_queries(lambda: client.get("/v1/sla-policies"))
    for i in range(2, 6):
        client.post("/v1/sla-policies", {**POLICY, "name": f"P{i}"})
    assert count_queries(lambda: client.get("/v1/sla-policies")) == two


def test_the_macro_list_costs_the_same_for_2_or_6(client_for, alice) -> None:
    client = client_for(alice)
    actions = [{"action_type": "set_status", "params": {"status": "pending"}}]
    for i in range(2):
        client.post("/v1/macros", {"name": f"M{i}", "actions": actions, "shared": i % 2 == 0})
    two = count_queries(lambda: client.get("/v1/macros"))
    for i in range(2, 6):
        client.post("/v1/macros", {"name": f"M{i}", "actions": actions, "shared": i % 2 == 0})
    assert count_queries(lambda: client.get("/v1/macros")) == two


def test_a_light_agent_reads_settings_but_changes_none(client_for, workspace_a) -> None:
    lena = light_agent(workspace_a)
    client = client_for(lena)
    assert client.get("/v1/sla-policies").status_code == 200
    assert client.get("/v1/business-hours").status_code == 200
    assert client.post("/v1/sla-policies", POLICY).status_code == 403
    assert client.get("/v1/automations").status_code == 403
