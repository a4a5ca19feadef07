"""Ticket numbers: a per-workspace sequence with neither duplicates nor gaps, even when many
tickets are opened at once (ARCHITECTURE.md, "Tickets")."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from enque.testing import postgres_only
from enque.tests.factories import CustomerFactory, UserFactory
from tickets.actors import Actor
from tickets.models import Ticket, TicketCounter
from tickets.services import ticket_create
from workspaces.models import Customer, Workspace
from workspaces.services import workspace_create

THREADS = 8
TICKETS_PER_THREAD = 5


def write_in(customer: Customer, subject: str = "Printer on fire") -> Ticket:
    return ticket_create(
        workspace=customer.workspace,
        actor=Actor.for_customer(customer),
        subject=subject,
        body_text="It is on fire again.",
        customer=customer,
        channel="email",
    )


def open_tickets_at_once(workspace: Workspace) -> list[BaseException]:
    """THREADS customers each write in TICKETS_PER_THREAD times, all starting together, each
    on its own database connection. Returns what went wrong in the threads."""
    customers = [CustomerFactory(workspace=workspace) for _ in range(THREADS)]
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def customer_writes(customer: Customer) -> None:
        try:
            start.wait(timeout=30)
            for n in range(TICKETS_PER_THREAD):
                write_in(customer, subject=f"Message {n}")
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=customer_writes, args=(c,)) for c in customers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a creator hung"
    return errors


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_creations_number_1_to_40_without_duplicate_or_gap():
    workspace = workspace_create(name="Acme Support", owner=UserFactory())

    errors = open_tickets_at_once(workspace)

    assert errors == []
    numbers = sorted(Ticket.objects.for_workspace(workspace).values_list("number", flat=True))
    assert numbers == list(range(1, THREADS * TICKETS_PER_THREAD + 1))
    assert TicketCounter.objects.for_workspace(workspace).get().last_number == len(numbers)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_creations_in_a_workspace_without_a_counter_yet():
    # A workspace made by hand (not by workspace_create) gets its counter on first use; the
    # creators racing to make it must still agree on one sequence.
    workspace = Workspace.objects.create(name="Legacy", slug="legacy")

    errors = open_tickets_at_once(workspace)

    assert errors == []
    numbers = sorted(Ticket.objects.for_workspace(workspace).values_list("number", flat=True))
    assert numbers == list(range(1, THREADS * TICKETS_PER_THREAD + 1))
    assert TicketCounter.objects.for_workspace(workspace).count() == 1


@pytest.mark.django_db
def test_a_rolled_back_creation_gives_its_number_back(workspace_a, workspace_b, customer_a):
    assert write_in(customer_a).number == 1

    with pytest.raises(RuntimeError), transaction.atomic():
        assert write_in(customer_a).number == 2
        raise RuntimeError("the mail pipeline failed after creating the ticket")

    assert write_in(customer_a).number == 2
    assert sorted(Ticket.objects.for_workspace(workspace_a).values_list("number", flat=True)) == [
        1,
        2,
    ]
    # Workspace B's sequence never moved.
    assert write_in(CustomerFactory(workspace=workspace_b)).number == 1
