"""The demo's rules are rules the engine accepts and can run; the beat jobs are declared
and do their rounds."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from automation import actions, conditions, engine, tasks, webhooks
from automation.models import Automation, WebhookDelivery, WebhookStatus
from automation.tests.support import write_in
from enque.schedules import declared_jobs
from tickets.models import Ticket
from workspaces import demo_content as content
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db


def test_the_demo_rules_fit_the_engine() -> None:
    call_command(
        "seed_demo",
        "--tickets",
        "12",
        "--as-of",
        "2025-03-04T15:00:00+01:00",
        stdout=StringIO(),
        stderr=StringIO(),
    )
    workspace = Workspace.objects.get(slug=content.DEMO_SLUG)
    rules = list(
        Automation.objects.for_workspace(workspace).prefetch_related("conditions", "actions")
    )
    assert rules
    ticket = Ticket.objects.for_workspace(workspace).select_related("customer", "workspace").first()
    for rule in rules:
        for condition in rule.conditions.all():
            conditions.validate(
                condition.field, condition.operator, condition.value, workspace_id=workspace.pk
            )
        for action in rule.actions.all():
            actions.validate(action.action_type, action.params, workspace_id=workspace.pk)
        result = engine.dry_run(rule, ticket)
        assert all("error" not in a for a in result["actions"]), result


def test_the_beat_jobs_are_declared() -> None:
    jobs = {job.task: job.every_seconds for job in declared_jobs()}
    assert jobs["automation.tasks.run_minutely"] == 60
    assert jobs["automation.tasks.send_digests"] == 15 * 60


def test_the_minutely_round(rule, customer_a) -> None:
    rule(
        "time",
        conditions=[("hours_since_created", "gt", 0)],
        actions=[("add_tags", {"tags": ["ticked"]})],
    )
    ticket = write_in(customer_a)
    Ticket.objects.filter(pk=ticket.pk).update(created_at=timezone.now() - timedelta(hours=1))

    counts = tasks.run_minutely()

    assert counts["time_rules_fired"] == 1
    assert list(ticket.tags.values_list("name", flat=True)) == ["ticked"]


def test_a_lost_webhook_task_is_sent_again(customer_a, settings) -> None:
    from automation.tests.test_webhooks import Receiver

    settings.AUTOMATION_WEBHOOK_ALLOW_PRIVATE = True
    with Receiver() as receiver:
        lost = WebhookDelivery.objects.create(
            workspace=customer_a.workspace,
            url=receiver.url,
            body="{}",
            next_attempt_at=timezone.now() - timedelta(minutes=10),
        )
        fresh = WebhookDelivery.objects.create(
            workspace=customer_a.workspace,
            url=receiver.url,
            body="{}",
            next_attempt_at=timezone.now(),
        )
        assert webhooks.deliveries_lost() == [lost.pk]
        counts = tasks.run_minutely()

    assert counts["webhooks_requeued"] == 1
    lost.refresh_from_db()
    fresh.refresh_from_db()
    assert lost.status == WebhookStatus.SUCCEEDED and fresh.status == WebhookStatus.PENDING
