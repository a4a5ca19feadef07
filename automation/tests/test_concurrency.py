"""Races, on PostgreSQL (SQLite serialises writers, so nothing races there): two beat
workers firing the same time rules, and assignments taking turns in one team."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from automation import engine, services
from automation.models import AutomationRun
from automation.tests.support import agent_in, team_with, write_in
from tickets.models import Ticket, TicketEvent

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def in_threads(count: int, target: Callable[[int], None]) -> None:
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            target(i)
        except Exception as exc:  # noqa: BLE001 - collected, and asserted on after the join
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_two_workers_fire_each_time_window_once(alice, customer_a) -> None:
    automation = services.automation_create(
        workspace=alice.workspace,
        actor=alice,
        name="Old tickets",
        trigger="time",
        conditions=[{"field": "hours_since_created", "operator": "gt", "value": 1}],
        actions=[{"action_type": "add_note", "params": {"body": "Still open after an hour."}}],
    )
    tickets = [write_in(customer_a, f"T{i}") for i in range(15)]
    later = timezone.now() + timedelta(hours=2)

    in_threads(3, lambda i: engine.run_time_rules(now=later))

    assert AutomationRun.objects.filter(automation=automation).count() == 15
    per_ticket = Counter(
        TicketEvent.objects.filter(kind="automation").values_list("ticket_id", flat=True)
    )
    assert per_ticket == {t.pk: 1 for t in tickets}


def test_concurrent_round_robin_assignments_take_turns(alice, workspace_a, customer_a) -> None:
    agents = [agent_in(workspace_a, f"rr{i}@a.test", f"Agent {i}") for i in range(3)]
    team = team_with(workspace_a, *agents)
    services.automation_create(
        workspace=workspace_a,
        actor=alice,
        name="Spread",
        trigger="ticket_created",
        actions=[{"action_type": "assign_round_robin", "params": {"team_id": team.pk}}],
    )

    # Each thread's ticket commits, and its on-commit hooks run the rule, concurrently.
    in_threads(6, lambda i: write_in(customer_a, f"Race {i}"))

    assignees = Counter(
        Ticket.objects.filter(subject__startswith="Race").values_list("assignee_id", flat=True)
    )
    assert assignees == {a.pk: 2 for a in agents}
