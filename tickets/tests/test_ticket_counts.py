"""The maintained inbox counts (tickets.counts): triggers, compaction, rebuild."""

from __future__ import annotations

import contextlib
import random
from collections import Counter
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from enque.errors import EnqueError
from enque.testing import postgres_only
from enque.tests.factories import AgentFactory, CustomerFactory, TeamFactory
from integrations.models import MailboxConnection
from tickets import counts, tasks
from tickets.actors import Actor
from tickets.models import Ticket, TicketCountDelta, TicketStatus
from tickets.services import (
    ticket_create,
    ticket_delete,
    ticket_merge,
    ticket_restore,
    ticket_update,
    tickets_bulk_update,
)
from workspaces.models import Agent, Customer, Workspace
from workspaces.services import customer_delete, team_delete

STATUSES = [str(s) for s in TicketStatus]


def counted_from_tickets(workspace: Workspace | int) -> dict[counts.CountKey, int]:
    """What the counts must be: a GROUP BY over the workspace's live tickets."""
    rows = (
        Ticket.objects.for_workspace(workspace)
        .filter(deleted_at__isnull=True)
        .values_list("status", "assignee_id", "team_id", "mailbox_id")
    )
    return dict(Counter(counts.CountKey(*row) for row in rows))


def assert_counts_match(*workspaces: Workspace) -> None:
    for workspace in workspaces:
        assert counts.key_counts(workspace=workspace) == counted_from_tickets(workspace)


def new_ticket(workspace: Workspace, customer: Customer, **fields) -> Ticket:
    return ticket_create(
        workspace=workspace,
        actor=Actor.for_customer(customer),
        subject="Printer on fire",
        body_text="It is on fire again.",
        customer=customer,
        channel="email",
        **fields,
    )


class World:
    """One workspace's agents, teams and mailboxes, and a random walk over its tickets."""

    def __init__(self, workspace: Workspace, admin: Agent, rng: random.Random) -> None:
        self.workspace = workspace
        self.admin = admin
        self.rng = rng
        self.agents = [admin, *(AgentFactory(workspace=workspace) for _ in range(3))]
        self.teams = [TeamFactory(workspace=workspace) for _ in range(3)]
        self.mailboxes = [
            MailboxConnection.objects.create(
                workspace=workspace, provider="imap", email_address=f"help{i}@{workspace.slug}.test"
            )
            for i in range(2)
        ]
        self.customers = [CustomerFactory(workspace=workspace) for _ in range(2)]

    def maybe(self, options: list):
        return self.rng.choice([None, *options])

    def tickets(self) -> list[Ticket]:
        return list(Ticket.objects.for_workspace(self.workspace).order_by("pk"))

    def pick(self) -> Ticket | None:
        tickets = self.tickets()
        return self.rng.choice(tickets) if tickets else None

    def step(self) -> str:
        rng, actor = self.rng, Actor.for_agent(self.admin)
        ticket = self.pick()
        operation = rng.choice(OPERATIONS if ticket else ["create"])
        # A refusal (merged, deleted, ...) changes nothing, which the caller checks too.
        with contextlib.suppress(EnqueError):
            self.run(operation, ticket, actor)
        return operation

    def run(self, operation: str, ticket: Ticket | None, actor: Actor) -> None:
        rng, ws = self.rng, self.workspace
        if operation == "create":
            new_ticket(
                ws,
                rng.choice(self.customers),
                status=rng.choice(STATUSES),
                assignee=self.maybe(self.agents),
                team=self.maybe(self.teams),
                mailbox=self.maybe(self.mailboxes),
            )
        elif operation == "assign":
            ticket_update(ticket=ticket, actor=actor, assignee=self.maybe(self.agents))
        elif operation == "team":
            ticket_update(ticket=ticket, actor=actor, team=self.maybe(self.teams))
        elif operation == "status":
            ticket_update(ticket=ticket, actor=actor, status=rng.choice(STATUSES))
        elif operation == "updated_at":
            ticket_update(ticket=ticket, actor=actor, priority=rng.choice(["low", "high"]))
        elif operation == "soft_delete":
            ticket_delete(ticket=ticket, actor=actor)
        elif operation == "restore":
            ticket_restore(ticket=ticket, actor=actor)
        elif operation == "merge":
            target = self.pick()
            if target is not None and target.pk != ticket.pk:
                ticket_merge(source=ticket, target=target, actor=actor)
        elif operation == "bulk_service":
            numbers = [t.number for t in rng.sample(self.tickets(), k=min(3, len(self.tickets())))]
            tickets_bulk_update(
                workspace=ws, actor=actor, numbers=numbers, status=rng.choice(STATUSES)
            )
        elif operation == "raw_update":
            # Bulk .update()s bypass every service and save(): only triggers see them.
            chosen = [t.pk for t in rng.sample(self.tickets(), k=min(4, len(self.tickets())))]
            Ticket.objects.filter(pk__in=chosen).update(
                status=rng.choice(STATUSES),
                assignee=self.maybe(self.agents),
                mailbox=self.maybe(self.mailboxes),
            )
        elif operation == "raw_deleted_at":
            chosen = [t.pk for t in rng.sample(self.tickets(), k=min(3, len(self.tickets())))]
            Ticket.objects.filter(pk__in=chosen).update(
                deleted_at=rng.choice([None, timezone.now()])
            )
        elif operation == "raw_touch":
            # No key changes: the update trigger must not fire (see test below), nor miscount.
            Ticket.objects.filter(pk=ticket.pk).update(
                updated_at=timezone.now() + timedelta(seconds=1)
            )
        elif operation == "hard_delete":
            Ticket.objects.filter(pk=ticket.pk).delete()
        elif operation == "delete_team" and len(self.teams) > 1:
            team = self.teams.pop(rng.randrange(len(self.teams)))
            team_delete(workspace=ws, actor=self.admin, team=team)
        elif operation == "delete_mailbox" and len(self.mailboxes) > 1:
            # The ORM's SET NULL cascade: an UPDATE of the mailbox's tickets.
            self.mailboxes.pop(rng.randrange(len(self.mailboxes))).delete()
        elif operation == "delete_agent" and len(self.agents) > 2:
            self.agents.pop(rng.randrange(1, len(self.agents))).delete()
        elif operation == "delete_customer":
            customer = CustomerFactory(workspace=ws)
            customer_delete(workspace=ws, actor=self.admin, customer=customer)


OPERATIONS = [
    "create",
    "create",
    "create",
    "assign",
    "team",
    "status",
    "updated_at",
    "soft_delete",
    "restore",
    "merge",
    "bulk_service",
    "raw_update",
    "raw_deleted_at",
    "raw_touch",
    "hard_delete",
    "delete_team",
    "delete_mailbox",
    "delete_agent",
    "delete_customer",
]


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_counts_follow_every_kind_of_ticket_change(
    seed: int, workspace_a: Workspace, workspace_b: Workspace, alice: Agent, charlie: Agent
) -> None:
    rng = random.Random(seed)
    worlds = [World(workspace_a, alice, rng), World(workspace_b, charlie, rng)]
    done = Counter()
    for _ in range(70):
        world = rng.choice(worlds)
        done[world.step()] += 1
        assert_counts_match(workspace_a, workspace_b)
        if rng.random() < 0.1:
            counts.compact_ticket_counts()
            assert_counts_match(workspace_a, workspace_b)
    assert done["create"] > 5 and len(done) > 10, done  # the walk went everywhere

    # Deleting a whole workspace (the ORM collector deletes its tickets first, and the
    # triggers append their -1s) leaves the other one alone, and compaction clears its rows.
    assert counted_from_tickets(workspace_b)
    workspace_b_id = workspace_b.pk
    workspace_b.delete()
    assert counts.key_counts(workspace=workspace_b_id) == {}
    assert_counts_match(workspace_a)
    counts.compact_ticket_counts()
    assert not TicketCountDelta.objects.filter(workspace_id=workspace_b_id).exists()
    assert_counts_match(workspace_a)


@pytest.mark.django_db
def test_an_update_that_changes_no_key_appends_nothing(
    workspace_a: Workspace, customer_a: Customer, alice: Agent
) -> None:
    ticket = new_ticket(workspace_a, customer_a, assignee=alice)
    before = TicketCountDelta.objects.count()

    ticket_update(ticket=ticket, actor=Actor.for_agent(alice), priority="urgent", subject="Hot")
    Ticket.objects.filter(pk=ticket.pk).update(updated_at=timezone.now())
    # Deleted at another time is still deleted: no change of the count either.
    ticket_delete(ticket=ticket, actor=Actor.for_agent(alice))
    after_delete = TicketCountDelta.objects.count()
    Ticket.objects.filter(pk=ticket.pk).update(deleted_at=timezone.now() + timedelta(hours=1))

    assert after_delete == before + 1  # the soft delete's one -1
    assert TicketCountDelta.objects.count() == after_delete


@pytest.mark.django_db
def test_a_bulk_insert_is_counted(workspace_a: Workspace, customer_a: Customer) -> None:
    number = 100
    Ticket.objects.bulk_create(
        Ticket(workspace=workspace_a, customer=customer_a, number=number + i, subject="x")
        for i in range(10)
    )
    rows = TicketCountDelta.objects.for_workspace(workspace_a).count()
    # A statement trigger on PostgreSQL, row triggers on SQLite.
    assert rows == (1 if connection.vendor == "postgresql" else 10)
    assert_counts_match(workspace_a)


@pytest.mark.django_db
def test_compaction_leaves_one_row_per_live_key_and_keeps_the_totals(
    workspace_a: Workspace, customer_a: Customer, alice: Agent, bob: Agent
) -> None:
    team = TeamFactory(workspace=workspace_a)
    tickets = [new_ticket(workspace_a, customer_a, team=team) for _ in range(4)]
    for ticket in tickets[:3]:
        ticket_update(ticket=ticket, actor=Actor.for_agent(alice), assignee=bob)
    # A key that went back to zero: created, then hard-deleted.
    gone = new_ticket(workspace_a, customer_a, assignee=alice)
    Ticket.objects.filter(pk=gone.pk).delete()
    expected = counted_from_tickets(workspace_a)
    assert TicketCountDelta.objects.count() > len(expected)

    removed = counts.compact_ticket_counts()

    rows = list(TicketCountDelta.objects.for_workspace(workspace_a))
    assert len(rows) == len(expected) == 2  # (new, bob, team) x3 and (new, -, team) x1
    assert removed > 0
    assert counts.key_counts(workspace=workspace_a) == expected
    # A second run (the periodic task, run in-process) has nothing to fold.
    assert tasks.compact_ticket_counts() == 0
    assert list(TicketCountDelta.objects.for_workspace(workspace_a)) == rows


@pytest.mark.django_db
def test_rebuild_recomputes_a_workspace_from_its_tickets(
    workspace_a: Workspace, workspace_b: Workspace, customer_a: Customer, customer_b: Customer
) -> None:
    for _ in range(3):
        new_ticket(workspace_a, customer_a)
    new_ticket(workspace_b, customer_b)
    # Rows lost or wrong (as after a load with triggers off).
    TicketCountDelta.objects.for_workspace(workspace_a).update(n=7)
    other = list(TicketCountDelta.objects.for_workspace(workspace_b).values())

    counts.rebuild_ticket_counts(workspace_a.pk)

    assert_counts_match(workspace_a, workspace_b)
    assert TicketCountDelta.objects.for_workspace(workspace_a).count() == 1
    assert list(TicketCountDelta.objects.for_workspace(workspace_b).values()) == other


def test_count_for_sums_the_keys_a_view_matches() -> None:
    key = counts.CountKey
    totals = {
        key("open", 1, 10, None): 2,
        key("open", None, 10, 5): 3,
        key("pending", 2, None, 5): 4,
        key("closed", 1, None, None): 8,
    }
    me = Agent(pk=1)
    active = ["new", "open", "pending", "on_hold"]

    def count(**filters) -> int:
        return counts.count_for(totals, agent=me, filters=filters)

    assert count(status=active) == 9
    assert count(status=active, assignee="me") == 2
    assert count(status=active, assignee="none") == 3
    assert count(status=active, assignee=2) == 4
    assert count(status=active, team=10) == 5
    assert count(status=active, team="none") == 4
    assert count(status=active, mailbox=5) == 7
    assert count() == 17
    with pytest.raises(ValueError, match="priority"):
        count(status=active, priority=["high"])


# --- Concurrency (PostgreSQL) -----------------------------------------------------------------


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_compaction_keeps_a_delta_committed_while_it_runs(
    workspace_a: Workspace, customer_a: Customer, alice: Agent
) -> None:
    """Another transaction took a LOWER delta id than the compaction's high mark, and
    commits right after the compaction's first write. Its rows must be neither deleted
    unsummed nor summed twice: a compaction in two statements (sum up to the mark, then
    delete up to the mark) would delete them unsummed."""
    first, second, late = (new_ticket(workspace_a, customer_a) for _ in range(3))
    other = psycopg.connect(**connection.get_connection_params(), autocommit=False)
    compaction_writes: list[str] = []

    def commit_the_other_after_the_first_write(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "tickets_ticketcountdelta" in sql and not sql.lstrip().startswith("SELECT MAX"):
            compaction_writes.append(sql)
            if len(compaction_writes) == 1:
                other.commit()
        return result

    try:
        # 1. Another transaction changes a ticket: its delta rows get their ids now and stay
        # uncommitted.
        other.execute(
            "UPDATE tickets_ticket SET assignee_id = %s WHERE id = %s", [alice.pk, late.pk]
        )
        # 2. Later changes commit with higher ids: the compaction's mark is above step 1's.
        ticket_update(ticket=first, actor=Actor.for_agent(alice), status="open")
        ticket_update(ticket=second, actor=Actor.for_agent(alice), status="open")
        assert TicketCountDelta.objects.count() > len(counted_from_tickets(workspace_a))

        with connection.execute_wrapper(commit_the_other_after_the_first_write):
            counts.compact_ticket_counts()
    finally:
        other.close()

    assert compaction_writes, "the compaction wrote nothing"
    assert_counts_match(workspace_a)
    counts.compact_ticket_counts()
    assert_counts_match(workspace_a)
    assert TicketCountDelta.objects.count() == len(counted_from_tickets(workspace_a))
