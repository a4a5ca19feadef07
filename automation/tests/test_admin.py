"""Admin for rules, business hours and SLA policies: inline rows join their parent's
workspace, and per-tenant constraints are form errors, not database errors."""

from __future__ import annotations

import pytest
from django.urls import reverse

from automation.models import (
    Automation,
    AutomationAction,
    AutomationCondition,
    BusinessHours,
    SLAPolicy,
    Workflow,
)
from enque.tests.admin_helpers import changeform_data
from enque.tests.factories import CustomerFactory


def url(obj_or_model, view: str = "change") -> str:
    opts = obj_or_model._meta
    args = [obj_or_model.pk] if view == "change" else []
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


@pytest.fixture
def staff_client(client, alice):
    alice.user.is_staff = True
    alice.user.save(update_fields=["is_staff"])
    client.force_login(alice.user)
    return client


def test_an_automation_with_its_conditions_and_actions(staff_client, workspace_a) -> None:
    data = changeform_data(staff_client.get(url(Automation, "add")))
    data.update(
        {
            "workspace": workspace_a.pk,
            "name": "VIP first",
            "trigger": "ticket_created",
            "match": "all",
            "is_active": "on",
            "position": 0,
            "conditions-TOTAL_FORMS": 1,
            "conditions-0-position": 0,
            "conditions-0-field": "from_domain",
            "conditions-0-operator": "is",
            "conditions-0-value": '"vip.test"',
            "actions-TOTAL_FORMS": 1,
            "actions-0-position": 0,
            "actions-0-action_type": "set_priority",
            "actions-0-params": '{"priority": "urgent"}',
        }
    )
    response = staff_client.post(url(Automation, "add"), data)
    assert response.status_code == 302, response.context["errors"]
    automation = Automation.objects.get(name="VIP first")
    condition = AutomationCondition.objects.get(automation=automation)
    action = AutomationAction.objects.get(automation=automation)
    assert condition.workspace_id == action.workspace_id == workspace_a.pk
    assert condition.value == "vip.test"
    assert action.params == {"priority": "urgent"}


def test_an_automation_uses_its_workflows_trigger(staff_client, workspace_a) -> None:
    workflow = Workflow.objects.create(
        workspace=workspace_a, name="Replies", trigger="customer_replied"
    )
    data = changeform_data(staff_client.get(url(Automation, "add")))
    data.update(
        workspace=workspace_a.pk,
        name="Mismatch",
        trigger="ticket_created",
        match="all",
        position=0,
        workflow=workflow.pk,
    )
    response = staff_client.post(url(Automation, "add"), data)
    assert "trigger" in response.context["adminform"].form.errors


def test_one_default_business_hours_per_workspace(staff_client, workspace_a) -> None:
    BusinessHours.objects.create(workspace=workspace_a, name="Office", is_default=True)
    data = changeform_data(staff_client.get(url(BusinessHours, "add")))
    data.update(workspace=workspace_a.pk, name="Night", timezone="UTC", is_default="on")
    response = staff_client.post(url(BusinessHours, "add"), data)
    assert response.status_code == 200  # a form error, not an IntegrityError
    assert response.context["adminform"].form.errors
    assert BusinessHours.objects.filter(workspace=workspace_a).count() == 1


def test_business_hours_slots_inline(staff_client, workspace_a) -> None:
    hours = BusinessHours.objects.create(workspace=workspace_a, name="Office")
    data = changeform_data(staff_client.get(url(hours)))
    data.update(
        {
            "slots-TOTAL_FORMS": 1,
            "slots-0-weekday": 0,
            "slots-0-opens_at": "17:00",
            "slots-0-closes_at": "09:00",
        }
    )
    response = staff_client.post(url(hours), data)
    assert response.status_code == 200  # closes before it opens: refused by the form
    assert not hours.slots.exists()
    data["slots-0-opens_at"], data["slots-0-closes_at"] = "09:00", "17:00"
    assert staff_client.post(url(hours), data).status_code == 302
    assert hours.slots.get().workspace_id == workspace_a.pk


def test_sla_policy_refuses_another_workspaces_customer(admin_client, workspace_a, workspace_b):
    foreign = CustomerFactory(workspace=workspace_b)
    data = changeform_data(admin_client.get(url(SLAPolicy, "add")))
    data.update(
        {
            "workspace": workspace_a.pk,
            "name": "Gold",
            "is_active": "on",
            "position": 0,
            "customer": foreign.pk,
            "targets-TOTAL_FORMS": 1,
            "targets-0-priority": "urgent",
            "targets-0-first_response_minutes": 15,
        }
    )
    response = admin_client.post(url(SLAPolicy, "add"), data)
    assert "customer" in response.context["adminform"].form.errors
    data["customer"] = ""
    assert admin_client.post(url(SLAPolicy, "add"), data).status_code == 302
    policy = SLAPolicy.objects.get(name="Gold")
    assert policy.targets.get().workspace_id == workspace_a.pk


def test_a_condition_that_does_not_fit_is_a_form_error(staff_client, workspace_a) -> None:
    data = changeform_data(staff_client.get(url(Automation, "add")))
    data.update(
        {
            "workspace": workspace_a.pk,
            "name": "Bad",
            "trigger": "ticket_created",
            "match": "all",
            "position": 0,
            "conditions-TOTAL_FORMS": 1,
            "conditions-0-position": 0,
            "conditions-0-field": "priority",
            "conditions-0-operator": "contains",
            "conditions-0-value": '"hi"',
            "actions-TOTAL_FORMS": 1,
            "actions-0-position": 0,
            "actions-0-action_type": "set_priority",
            "actions-0-params": '{"priority": "whenever"}',
        }
    )
    response = staff_client.post(url(Automation, "add"), data)
    assert response.status_code == 200
    condition_errors, action_errors = (
        inline.formset.errors[0] for inline in response.context["inline_admin_formsets"]
    )
    assert "operator" in condition_errors and "params" in action_errors
    assert not Automation.objects.exists()


def test_a_webhook_secret_is_write_only_in_the_admin(staff_client, workspace_a) -> None:
    automation = Automation.objects.create(
        workspace=workspace_a, name="Hook", trigger="ticket_created"
    )
    action = AutomationAction.objects.create(
        workspace=workspace_a,
        automation=automation,
        action_type="call_webhook",
        params={"url": "https://hooks.example.com/x"},
        secret="hunter2-secret",
    )
    page = staff_client.get(url(action))
    assert page.status_code == 200 and b"hunter2-secret" not in page.content
    data = changeform_data(page)
    data["secret"] = "new-secret"
    assert staff_client.post(url(action), data).status_code == 302
    action.refresh_from_db()
    assert action.secret == "new-secret"


def test_a_macro_with_an_action_that_does_not_fit_is_a_form_error(staff_client, workspace_a):
    from automation.models import Macro

    data = changeform_data(staff_client.get(url(Macro, "add")))
    data.update(
        workspace=workspace_a.pk,
        name="Bad macro",
        position=0,
        usage_count=0,
        actions='[{"action_type": "call_webhook", "params": {"url": "https://x.test"}}]',
    )
    response = staff_client.post(url(Macro, "add"), data)
    assert response.status_code == 200
    assert "actions" in response.context["adminform"].form.errors
    data["actions"] = '[{"action_type": "add_tags", "params": {"tags": ["  vip "]}}]'
    assert staff_client.post(url(Macro, "add"), data).status_code == 302
    assert Macro.objects.get().actions == [{"action_type": "add_tags", "params": {"tags": ["vip"]}}]
