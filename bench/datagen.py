"""Benchmark dataset: one workspace filled with a realistic helpdesk's history.

    .venv/bin/python bench/datagen.py --size 10000          # make bench-data SIZE=10000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enque_bench .venv/bin/python \
        bench/datagen.py --size 1000000

Fills the workspace ``bench-<size>`` (reused as it is when it already holds that many
tickets) with ``size`` tickets created over two years (volume growing with time), ~5
comments each (the customer's first message, agents' replies and internal notes, customer
answers), a first message (``TicketBody``), 0-3 tags, history (created, assigned, status
changes), ~1 customer per 4 tickets, companies, 50 agents, 6 teams, 10 categories, 40 tags.
Each ticket's stored timestamps agree with its thread: ``first_response_at`` is the first
agent reply, ``resolved_at`` / ``closed_at`` follow it for done tickets, the last customer
and agent reply times are those of the last such comments, ``updated_at`` is the latest of
them. Tickets still open are mostly recent ones, as in a real inbox. The workspace's ticket
counter ends at ``size``, so tickets created afterwards get the next numbers.

PostgreSQL: one transaction, rows streamed with ``COPY`` (psycopg's ``cursor.copy``); for
big loads the secondary indexes of the bulk tables (the full-text GIN indexes among them)
are dropped first and built again at the end — one sorted build instead of millions of
index insertions — and foreign-key triggers are off for the load (the rows are generated
consistent; the final index builds still check every unique constraint). SQLite:
``bulk_create`` in batches, one transaction. Either way an interrupted run leaves nothing.

Ids are taken after the table's current maximum and the sequences moved past them.
"""

# Seeded random.Random everywhere: reproducible benchmark data, not secrets.
# ruff: noqa: S311

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

BASE_DIR = Path(__file__).resolve().parent.parent

if TYPE_CHECKING:
    from workspaces.models import Workspace

BENCH_PASSWORD = "enque-bench-password"  # noqa: S105 - a throwaway benchmark login
AGENTS = 50
TEAMS = ["Support", "Billing", "Technical", "Sales", "Onboarding", "Escalations"]
CATEGORIES = [
    "Question",
    "Incident",
    "Problem",
    "Feature request",
    "Billing",
    "Account",
    "Shipping",
    "Returns",
    "Integration",
    "Other",
]
TAG_NAMES = [
    "vip", "refund", "bug", "urgent", "invoice", "login", "password", "api", "mobile",
    "billing", "shipping", "delivery", "returns", "outage", "feedback", "feature", "howto",
    "upgrade", "downgrade", "cancel", "trial", "onboarding", "integration", "export",
    "import", "sso", "security", "gdpr", "spam", "duplicate", "printer", "network",
    "email", "performance", "crash", "data", "report", "migration", "partner", "enterprise",
]  # fmt: skip
FIRST_NAMES = [
    "Anna", "Ben", "Carla", "David", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas",
    "Kira", "Luca", "Maya", "Noah", "Olga", "Pablo", "Qing", "Rosa", "Sami", "Tara", "Umar",
    "Vera", "Wim", "Xenia", "Yusuf", "Zoe",
]  # fmt: skip
LAST_NAMES = [
    "Adams", "Berg", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hansen", "Ito",
    "Jensen", "Kowalski", "Larsen", "Moreau", "Nowak", "Okafor", "Petrov", "Quinn", "Rossi",
    "Schmidt", "Tanaka", "Umeh", "Varga", "Weber", "Yilmaz", "Zhang",
]  # fmt: skip
COMPANY_WORDS = [
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Wonka",
    "Cyberdyne", "Soylent", "Tyrell", "Aperture", "Massive", "Oscorp", "Nakatomi", "Monarch",
    "Gringotts", "Dunder", "Prestige",
]  # fmt: skip
COMPANY_SUFFIXES = ["Ltd", "GmbH", "Inc", "Labs", "Group", "Systems", "Partners", "Co"]
SUBJECT_TOPICS = [
    "invoice", "refund", "printer", "login", "password reset", "order", "delivery",
    "shipping label", "account", "subscription", "export", "import", "API token", "webhook",
    "billing address", "credit card", "upgrade", "cancellation", "mobile app", "dashboard",
    "report", "integration", "SSO", "two-factor code", "data migration", "attachment",
    "notification emails", "calendar sync", "user seats", "VAT number",
]  # fmt: skip
SUBJECT_PATTERNS = [
    "Problem with my {t}",
    "{t} not working",
    "Question about {t}",
    "Urgent: {t} failing since this morning",
    "Can't find my {t}",
    "Help with {t}",
    "{t} error after update",
    "Request: change {t}",
    "Re: {t}",
    "Wrong {t} on my account",
    "How do I set up the {t}?",
    "{t} is very slow",
]
BODY_WORDS = (  # noqa: SIM905 - reads as prose
    "the a to and of in is it for on that this with my we you our please can not have be "
    "are was will from at as but your they if or thanks hello hi regards since yesterday "
    "morning again still error page screen account order invoice refund printer login "
    "password reset email link button click update version app browser chrome firefox "
    "windows mac phone mobile team customer support ticket issue problem question help "
    "working broken slow fast data export import report dashboard settings billing card "
    "payment charge plan upgrade delivery shipping address tracking number package warehouse "
    "sync calendar integration webhook token api key access permission admin user seat "
    "license trial cancel subscription renewal contract price quote discount tax vat"
).split()
AGENT_OPENERS = [
    "Thanks for reaching out.",
    "Sorry for the trouble.",
    "I have looked into this.",
    "Good news:",
    "Could you send us a screenshot?",
    "We have escalated this to our engineers.",
]
NOTE_OPENERS = ["Internal:", "FYI", "Checked the logs:", "Customer is on the enterprise plan."]
DOMAINS = ["example.com", "mail.example", "corp.example", "example.org", "example.net"]

BATCH = 50_000  # rows per progress line (PostgreSQL) / per bulk_create (SQLite, 2,000)
# PostgreSQL loads at least this big drop and rebuild the bulk tables' secondary indexes.
INDEX_REBUILD_THRESHOLD = 100_000


def log(message: str) -> None:
    print(message, flush=True)


class Progress:
    """A progress line per batch: rows so far, percent, rate, elapsed."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, max(total, 1), 0
        self.started = time.monotonic()
        self.next_report = BATCH

    def add(self, n: int = 1) -> None:
        self.done += n
        if self.done >= self.next_report:
            self.report()
            self.next_report += BATCH * (10 if self.total > 2_000_000 else 1)

    def report(self, final: bool = False) -> None:
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed else 0
        pct = min(100.0, 100 * self.done / self.total)
        end = "done" if final else f"{pct:5.1f}%"
        log(f"  {self.label:<14} {self.done:>11,} rows {end} {elapsed:7.1f} s ({rate:,.0f} rows/s)")


# --- Plans: what every ticket looks like, decided before any row is written -------------


class TicketPlan:
    """One ticket's shape. Rows of every table are derived from it (tickets first, then
    comments, bodies, tags and history), so they agree with each other."""

    __slots__ = (
        "assignee", "category", "channel", "closed", "company", "created", "customer",
        "first_response", "id", "last_agent", "last_customer", "n_comments", "number",
        "priority", "resolved", "seed", "status", "team", "updated",
    )  # fmt: skip


STATUS_BY_AGE = [
    # (max age in days, [(status, weight), ...]): open work is mostly recent.
    (3, [("new", 30), ("open", 40), ("pending", 15), ("on_hold", 5), ("resolved", 10)]),
    (
        30,
        [
            ("new", 3),
            ("open", 17),
            ("pending", 12),
            ("on_hold", 5),
            ("resolved", 38),
            ("closed", 25),
        ],
    ),
    (10_000, [("open", 1), ("pending", 1), ("resolved", 18), ("closed", 80)]),
]
PRIORITIES = (["low"] * 20) + (["normal"] * 55) + (["high"] * 18) + (["urgent"] * 7)
CHANNELS = (["email"] * 75) + (["web"] * 17) + (["api"] * 8)
COMMENT_COUNTS = [1, 2, 3, 4, 5, 5, 6, 7, 8, 9]  # mean 5


def plan_tickets(
    *,
    size: int,
    first_id: int,
    now: datetime,
    customers: list[tuple[int, int | None]],
    agents: list[int],
    teams: list[int],
    categories: list[int],
    rng: random.Random,
) -> list[TicketPlan]:
    span = 730 * 86400
    # Volume grows over the two years: more tickets are recent than old.
    ages = sorted((span * (rng.random() ** 1.4) for _ in range(size)), reverse=True)
    plans: list[TicketPlan] = []
    for index, age in enumerate(ages):
        p = TicketPlan()
        p.id = first_id + index
        p.number = index + 1
        p.created = now - timedelta(seconds=age)
        days = age / 86400
        choices = next(c for limit, c in STATUS_BY_AGE if days <= limit)
        p.status = rng.choices([s for s, _ in choices], [w for _, w in choices])[0]
        p.priority = rng.choice(PRIORITIES)
        p.channel = rng.choice(CHANNELS)
        p.customer, p.company = rng.choice(customers)
        unassigned = p.status == "new" and rng.random() < 0.6
        p.assignee = None if unassigned or rng.random() < 0.05 else rng.choice(agents)
        p.team = rng.choice(teams) if rng.random() < 0.7 else None
        p.category = rng.choice(categories) if rng.random() < 0.6 else None
        p.n_comments = 1 if p.status == "new" else rng.choice(COMMENT_COUNTS)
        p.seed = rng.getrandbits(32)
        # Times: the first agent reply within a day, the rest spread after it.
        limit = now - timedelta(minutes=1)
        p.first_response = None
        if p.n_comments > 1:
            p.first_response = min(limit, p.created + timedelta(minutes=rng.randint(5, 1440)))
        p.resolved = p.closed = None
        if p.status in ("resolved", "closed"):
            start = p.first_response or p.created
            p.resolved = min(limit, start + timedelta(minutes=rng.randint(30, 7 * 1440)))
            if p.status == "closed":
                p.closed = min(limit, p.resolved + timedelta(minutes=rng.randint(60, 4 * 1440)))
        plans.append(p)
    return plans


def comment_times(p: TicketPlan, now: datetime) -> list[datetime]:
    """The thread's times: the first message at creation, the first agent reply at
    ``first_response``, the rest between it and resolution (or now)."""
    if p.n_comments == 1:
        return [p.created]
    end = p.resolved or min(now - timedelta(seconds=30), p.created + timedelta(days=10))
    start = p.first_response
    times = [p.created, start]
    remaining = p.n_comments - 2
    if remaining:
        step = max((end - start).total_seconds(), remaining) / (remaining + 1)
        times += [start + timedelta(seconds=step * (i + 1)) for i in range(remaining)]
    return times


def comment_authors(p: TicketPlan, rng: random.Random) -> list[tuple[str, bool]]:
    """(author type, internal) per comment: the customer first, an agent answers, then
    customer answers, agent replies and internal notes."""
    authors = [("customer", False)]
    if p.n_comments > 1:
        authors.append(("agent", False))
    for _ in range(p.n_comments - len(authors)):
        roll = rng.random()
        if roll < 0.4:
            authors.append(("customer", False))
        elif roll < 0.85:
            authors.append(("agent", False))
        else:
            authors.append(("agent", True))
    return authors


def finish_plans(plans: list[TicketPlan], now: datetime) -> None:
    """Derive last_customer / last_agent / updated from each ticket's thread."""
    for p in plans:
        rng = random.Random(p.seed)
        times = comment_times(p, now)
        authors = comment_authors(p, rng)
        p.last_customer = max(
            t for t, (a, _) in zip(times, authors, strict=True) if a == "customer"
        )
        agent_times = [
            t
            for t, (a, internal) in zip(times, authors, strict=True)
            if a == "agent" and not internal
        ]
        p.last_agent = max(agent_times) if agent_times else None
        p.updated = max(t for t in (times[-1], p.resolved, p.closed) if t is not None)


def subject_for(rng: random.Random) -> str:
    return rng.choice(SUBJECT_PATTERNS).format(t=rng.choice(SUBJECT_TOPICS))


def words(rng: random.Random, low: int, high: int) -> str:
    text = " ".join(rng.choices(BODY_WORDS, k=rng.randint(low, high)))
    return text[0].upper() + text[1:] + "."


# PostgreSQL's default parser on this generator's text: words, and a hyphenated word both
# whole and in parts ("two-factor": two-factor, two, factor).
_TOKEN_RE = re.compile(r"\w+(?:-\w+)*")


def search_document(subject: str, texts: list[str]) -> str:
    """The ticket's search document as ``tsvector`` input text: what tickets/search.py's
    ``strip(to_tsvector('simple', ...))`` makes of the subject and thread, computed here so
    the load needs no UPDATE of every ticket afterwards."""
    lexemes: set[str] = set()
    for token in _TOKEN_RE.findall(" ".join([subject, *texts]).lower()):
        lexemes.add(token)
        if "-" in token:
            lexemes.update(token.split("-"))
    return " ".join(f"'{lexeme}'" for lexeme in sorted(lexemes))


# --- Rows ---------------------------------------------------------------------------------

TICKET_COLUMNS = (
    "id", "workspace_id", "created_at", "updated_at", "number", "subject", "status",
    "priority", "channel", "customer_id", "company_id", "assignee_id", "team_id",
    "category_id", "first_response_at", "resolved_at", "closed_at", "last_customer_reply_at",
    "last_agent_reply_at", "search_document",
)  # fmt: skip
COMMENT_COLUMNS = (
    "id", "workspace_id", "created_at", "updated_at", "ticket_id", "author_type",
    "author_agent_id", "author_customer_id", "is_internal", "via", "body_html", "body_text",
)  # fmt: skip
BODY_COLUMNS = ("id", "workspace_id", "created_at", "updated_at", "ticket_id", "html", "text")
TAG_LINK_COLUMNS = ("id", "workspace_id", "created_at", "updated_at", "ticket_id", "tag_id")
EVENT_COLUMNS = (
    "id", "workspace_id", "created_at", "updated_at", "ticket_id", "kind", "actor_type",
    "actor_agent_id", "actor_customer_id", "field", "old_value", "new_value", "data",
)  # fmt: skip
CUSTOMER_COLUMNS = (
    "id", "workspace_id", "created_at", "updated_at", "email", "name", "company_id",
    "phone", "notes",
)  # fmt: skip


class Generator:
    def __init__(
        self, workspace_id: int, plans: list[TicketPlan], now: datetime, *, postgres: bool
    ) -> None:
        # SQLite keeps no search documents (tickets/search.py).
        self.postgres = postgres
        self.ws = workspace_id
        self.plans = plans
        self.now = now
        self.subject_rng = random.Random(99)

    def tickets(self) -> Iterator[tuple[Any, ...]]:
        rng, ws = self.subject_rng, self.ws
        for p in self.plans:
            subject = subject_for(rng)
            document = None
            if self.postgres:
                document = search_document(subject, [text for *_, text in self.thread(p)])
            yield (
                p.id, ws, p.created, p.updated, p.number, subject, p.status,
                p.priority, p.channel, p.customer, p.company, p.assignee, p.team, p.category,
                p.first_response, p.resolved, p.closed, p.last_customer, p.last_agent,
                document,
            )  # fmt: skip

    def thread(self, p: TicketPlan) -> Iterator[tuple[datetime, str, bool, str]]:
        """(time, author type, internal, text) of each comment: the same draws every time,
        so the tickets' search documents and the comments agree."""
        rng = random.Random(p.seed)
        times = comment_times(p, self.now)
        authors = comment_authors(p, rng)  # same draws as finish_plans
        for at, (author, internal) in zip(times, authors, strict=True):
            if author == "customer":
                text = words(rng, 15, 45)
            elif internal:
                text = f"{rng.choice(NOTE_OPENERS)} {words(rng, 6, 20)}"
            else:
                text = f"{rng.choice(AGENT_OPENERS)} {words(rng, 15, 40)}"
            yield at, author, internal, text

    def comments(self, first_id: int, agents: list[int]) -> Iterator[tuple[Any, ...]]:
        next_id, ws = first_id, self.ws
        for p in self.plans:
            for at, author, internal, text in self.thread(p):
                if author == "customer":
                    agent, customer = None, p.customer
                    via = "email" if p.channel == "email" else "web"
                else:
                    agent, customer, via = p.assignee or agents[0], None, "web"
                yield (
                    next_id, ws, at, at, p.id, author, agent, customer, internal, via,
                    f"<p>{text}</p>", text,
                )  # fmt: skip
                next_id += 1

    def bodies(self, first_id: int) -> Iterator[tuple[Any, ...]]:
        ws = self.ws
        for offset, p in enumerate(self.plans):
            rng = random.Random(p.seed ^ 0x5A5A)
            text = words(rng, 15, 45)
            yield (first_id + offset, ws, p.created, p.created, p.id, f"<p>{text}</p>", text)

    def tag_links(self, first_id: int, tags: list[int]) -> Iterator[tuple[Any, ...]]:
        next_id, ws = first_id, self.ws
        rng = random.Random(17)
        weights = [1 / (i + 1) for i in range(len(tags))]  # a few tags are most common
        for p in self.plans:
            count = rng.choices((0, 1, 2, 3), (35, 35, 20, 10))[0]
            for tag in set(rng.choices(tags, weights, k=count)):
                yield (next_id, ws, p.created, p.created, p.id, tag)
                next_id += 1

    def events(self, first_id: int) -> Iterator[tuple[Any, ...]]:
        next_id, ws = first_id, self.ws
        for p in self.plans:
            yield (
                next_id, ws, p.created, p.created, p.id, "created", "customer", None,
                p.customer, "", None, None, {},
            )  # fmt: skip
            next_id += 1
            if p.assignee is not None:
                at = p.first_response or p.created
                yield (
                    next_id, ws, at, at, p.id, "field_changed", "agent", p.assignee, None,
                    "assignee", None, p.assignee, {},
                )  # fmt: skip
                next_id += 1
            if p.resolved is not None:
                yield (
                    next_id, ws, p.resolved, p.resolved, p.id, "field_changed", "agent",
                    p.assignee, None, "status", "open", "resolved", {},
                )  # fmt: skip
                next_id += 1
            if p.closed is not None:
                yield (
                    next_id, ws, p.closed, p.closed, p.id, "field_changed", "system", None,
                    None, "status", "resolved", "closed", {},
                )  # fmt: skip
                next_id += 1


def customer_rows(
    *, workspace_id: int, first_id: int, count: int, companies: list[int], now: datetime
) -> tuple[list[tuple[Any, ...]], list[tuple[int, int | None]]]:
    rng = random.Random(23)
    rows, refs = [], []
    for i in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        company = rng.choice(companies) if companies and rng.random() < 0.6 else None
        created = now - timedelta(days=730 * rng.random())
        email = f"{first.lower()}.{last.lower()}{i}@{rng.choice(DOMAINS)}"
        rows.append(
            (
                first_id + i,
                workspace_id,
                created,
                created,
                email,
                f"{first} {last}",
                company,
                "",
                "",
            )
        )
        refs.append((first_id + i, company))
    return rows, refs


# --- Writing --------------------------------------------------------------------------------


class Writer:
    """Rows into tables: COPY on PostgreSQL, bulk_create on SQLite."""

    def __init__(self) -> None:
        from django.db import connection

        self.connection = connection
        self.postgres = connection.vendor == "postgresql"

    def next_id(self, model: Any) -> int:
        with self.connection.cursor() as cursor:
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {model._meta.db_table}")  # noqa: S608
            return cursor.fetchone()[0]

    def write(
        self, model: Any, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]], total: int
    ) -> int:
        check_columns(model, columns)
        progress = Progress(model._meta.db_table.split("_", 1)[1], total)
        if self.postgres:
            self._copy(model, columns, rows, progress)
        else:
            self._bulk_create(model, columns, rows, progress)
        progress.report(final=True)
        return progress.done

    def _copy(
        self,
        model: Any,
        columns: tuple[str, ...],
        rows: Iterable[tuple[Any, ...]],
        progress: Progress,
    ) -> None:
        from django.db.models import JSONField

        # JSON columns go over COPY as their JSON text (None stays SQL NULL, as the ORM's).
        json_at = [
            i for i, c in enumerate(columns) if isinstance(model._meta.get_field(c), JSONField)
        ]
        table = model._meta.db_table
        with self.connection.cursor() as cursor:
            raw = cursor.cursor  # the psycopg cursor under Django's wrapper
            with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    if json_at:
                        row = list(row)
                        for i in json_at:
                            if row[i] is not None:
                                row[i] = json.dumps(row[i])
                    copy.write_row(row)
                    progress.add()

    def _bulk_create(
        self,
        model: Any,
        columns: tuple[str, ...],
        rows: Iterable[tuple[Any, ...]],
        progress: Progress,
    ) -> None:
        # updated_at is auto_now: bulk_create would stamp every row with the load's time.
        auto_now = [f for f in model._meta.concrete_fields if getattr(f, "auto_now", False)]
        for field in auto_now:
            field.auto_now = False
        try:
            batch: list[Any] = []
            for row in rows:
                batch.append(model(**dict(zip(columns, row, strict=True))))
                if len(batch) >= 2000:
                    model.objects.bulk_create(batch)
                    progress.add(len(batch))
                    batch = []
            if batch:
                model.objects.bulk_create(batch)
                progress.add(len(batch))
        finally:
            for field in auto_now:
                field.auto_now = True

    def fix_sequences(self, models: list[Any]) -> None:
        if not self.postgres:
            return  # SQLite's AUTOINCREMENT-less rowid follows MAX(id) by itself
        with self.connection.cursor() as cursor:
            for model in models:
                table = model._meta.db_table
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
                )


def check_columns(model: Any, columns: tuple[str, ...]) -> None:
    """Every NOT NULL column must be written: a field added to the model since this file was
    written stops the load with its name instead of failing deep inside COPY."""
    missing = [
        f.column for f in model._meta.concrete_fields if f.column not in columns and not f.null
    ]
    if missing:
        raise SystemExit(f"datagen: {model.__name__} has new required columns {missing}")


def secondary_indexes(tables: list[str]) -> list[tuple[str, str]]:
    """(name, definition) of the tables' indexes that no constraint owns (PK and unique
    constraints stay: they guard the load)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.indexname, i.indexdef FROM pg_indexes i
            WHERE i.tablename = ANY(%s) AND i.schemaname = current_schema()
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
            ORDER BY i.indexname
            """,
            [tables],
        )
        return list(cursor.fetchall())


# --- The dataset ------------------------------------------------------------------------


def _workspace_ticket_count(slug: str) -> tuple[Workspace | None, int]:
    from tickets.models import Ticket
    from workspaces.models import Workspace

    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is None:
        return None, 0
    return workspace, Ticket.objects.filter(workspace=workspace).count()


def ensure_dataset(size: int, *, seed: int = 1) -> Workspace:
    """The workspace ``bench-<size>`` with ``size`` tickets, generated unless it exists."""
    from django.db import transaction

    slug = f"bench-{size}"
    workspace, count = _workspace_ticket_count(slug)
    if workspace is not None and count >= size:
        log(f"dataset {slug}: reusing ({count:,} tickets)")
        return workspace
    if workspace is not None:
        log(f"dataset {slug}: has {count:,} tickets, not {size:,}: deleting it first")
        workspace.delete()
    started = time.monotonic()
    with transaction.atomic():
        workspace = _generate(size, slug, seed)
    elapsed = time.monotonic() - started
    log(f"dataset {slug}: generated in {elapsed:.1f} s")
    return workspace


def _generate(size: int, slug: str, seed: int) -> Workspace:
    from django.contrib.auth.hashers import make_password
    from django.db import connection
    from django.utils import timezone

    from tickets.counts import rebuild_ticket_counts
    from tickets.models import (
        Category,
        Comment,
        Tag,
        Ticket,
        TicketBody,
        TicketCounter,
        TicketEvent,
        TicketTag,
    )
    from workspaces.models import (
        Agent,
        AgentRole,
        Company,
        Customer,
        Team,
        TeamMembership,
        User,
        Workspace,
    )

    rng = random.Random(seed)
    now = timezone.now().astimezone(UTC).replace(microsecond=0)
    writer = Writer()
    log(f"dataset {slug}: generating {size:,} tickets on {connection.vendor}")

    workspace = Workspace.objects.create(name=f"Bench {size:,}", slug=slug)
    TicketCounter.objects.create(workspace=workspace, last_number=size)
    owner_email = f"owner@{slug}.bench.test"
    User.objects.filter(email__iexact=owner_email).delete()
    owner = User.objects.create_user(owner_email, BENCH_PASSWORD, name="Bench Owner")
    owner.last_workspace = workspace
    owner.save(update_fields=["last_workspace"])
    unusable = make_password(None)
    users = User.objects.bulk_create(
        [
            User(
                email=f"agent{i}@{slug}.bench.test",
                name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                password=unusable,
            )
            for i in range(AGENTS - 1)
        ]
    )
    User.objects.filter(email__endswith=f"@{slug}.bench.test").exclude(pk=owner.pk).exclude(
        pk__in=[u.pk for u in users]
    ).delete()
    agent_objs = [Agent(workspace=workspace, user=owner, role=AgentRole.OWNER)] + [
        Agent(workspace=workspace, user=user, role=AgentRole.ADMIN if i < 3 else AgentRole.AGENT)
        for i, user in enumerate(users)
    ]
    agents = [a.pk for a in Agent.objects.bulk_create(agent_objs)]
    teams = Team.objects.bulk_create([Team(workspace=workspace, name=name) for name in TEAMS])
    TeamMembership.objects.bulk_create(
        [
            TeamMembership(workspace=workspace, team=team, agent_id=agent)
            for i, agent in enumerate(agents)
            for team in {teams[i % len(teams)], teams[(i * 7) % len(teams)]}
        ]
    )
    team_ids = [t.pk for t in teams]
    category_ids = [
        c.pk
        for c in Category.objects.bulk_create(
            [Category(workspace=workspace, name=name) for name in CATEGORIES]
        )
    ]
    tag_ids = [
        t.pk for t in Tag.objects.bulk_create([Tag(workspace=workspace, name=n) for n in TAG_NAMES])
    ]
    company_count = max(5, size // 80)
    companies = Company.objects.bulk_create(
        [
            Company(
                workspace=workspace,
                name=f"{COMPANY_WORDS[i % len(COMPANY_WORDS)]} "
                f"{COMPANY_SUFFIXES[(i // len(COMPANY_WORDS)) % len(COMPANY_SUFFIXES)]} {i}",
            )
            for i in range(company_count)
        ],
        batch_size=2000,
    )
    company_ids = [c.pk for c in companies]
    log(f"  {len(agents)} agents, {len(teams)} teams, {company_count:,} companies")

    rebuild: list[tuple[str, str]] = []
    bulk_models = [Customer, Ticket, Comment, TicketBody, TicketTag, TicketEvent]
    if writer.postgres:
        with connection.cursor() as cursor:
            # Session settings of this load only: a big sort area for the index builds, no
            # flush wait per commit, and no per-row foreign-key triggers (the generator
            # writes consistent references; PostgreSQL still checks every unique index).
            cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
            cursor.execute("SET LOCAL synchronous_commit = off")
            cursor.execute("SET LOCAL session_replication_role = replica")
            if size >= INDEX_REBUILD_THRESHOLD:
                rebuild = secondary_indexes([m._meta.db_table for m in bulk_models])
                for name, _ in rebuild:
                    cursor.execute(f'DROP INDEX "{name}"')
                log(f"  dropped {len(rebuild)} secondary indexes for the load")

    customer_count = max(10, size // 4)
    rows, customers = customer_rows(
        workspace_id=workspace.pk,
        first_id=writer.next_id(Customer),
        count=customer_count,
        companies=company_ids,
        now=now,
    )
    writer.write(Customer, CUSTOMER_COLUMNS, rows, customer_count)
    del rows

    planned = time.monotonic()
    plans = plan_tickets(
        size=size,
        first_id=writer.next_id(Ticket),
        now=now,
        customers=customers,
        agents=agents,
        teams=team_ids,
        categories=category_ids,
        rng=rng,
    )
    finish_plans(plans, now)
    log(f"  planned {size:,} tickets in {time.monotonic() - planned:.1f} s")
    gen = Generator(workspace.pk, plans, now, postgres=writer.postgres)
    comment_total = sum(p.n_comments for p in plans)
    writer.write(Ticket, TICKET_COLUMNS, gen.tickets(), size)
    writer.write(
        Comment, COMMENT_COLUMNS, gen.comments(writer.next_id(Comment), agents), comment_total
    )
    writer.write(TicketBody, BODY_COLUMNS, gen.bodies(writer.next_id(TicketBody)), size)
    writer.write(
        TicketTag, TAG_LINK_COLUMNS, gen.tag_links(writer.next_id(TicketTag), tag_ids), size
    )
    event_total = sum(
        1 + (p.assignee is not None) + (p.resolved is not None) + (p.closed is not None)
        for p in plans
    )
    writer.write(TicketEvent, EVENT_COLUMNS, gen.events(writer.next_id(TicketEvent)), event_total)
    writer.fix_sequences(bulk_models)

    if writer.postgres:
        with connection.cursor() as cursor:
            for name, definition in rebuild:
                built = time.monotonic()
                cursor.execute(definition)
                log(f"  index {name} built in {time.monotonic() - built:.1f} s")
            cursor.execute("SET LOCAL session_replication_role = origin")
            # The inbox counts' triggers did not fire during the load (replica role).
            rebuild_ticket_counts(workspace.pk)
            analyzed = time.monotonic()
            for model in bulk_models:
                cursor.execute(f"ANALYZE {model._meta.db_table}")
            log(f"  analyzed in {time.monotonic() - analyzed:.1f} s")
    return workspace


def setup_django() -> None:
    sys.path.insert(0, str(BASE_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enque.settings")
    if not os.environ.get("DATABASE_URL"):
        # The embedded default: the benchmark's own SQLite file (and Redis) under var/bench.
        os.environ.setdefault("ENQUE_VAR_DIR", str(BASE_DIR / "var" / "bench"))
    os.environ.setdefault("LOG_LEVEL", "warning")
    import django

    django.setup()


def ensure_database() -> None:
    """Create the PostgreSQL database of DATABASE_URL when missing, then migrate."""
    from django.conf import settings
    from django.core.management import call_command

    if settings.IS_POSTGRES:
        import psycopg

        db = settings.DATABASES["default"]
        params = {
            "host": db.get("HOST") or "127.0.0.1",
            "port": db.get("PORT") or 5432,
            "user": db.get("USER") or "postgres",
            "password": db.get("PASSWORD") or None,
            "dbname": "postgres",
            "autocommit": True,
        }
        with psycopg.connect(**params) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]])
            if exists.fetchone() is None:
                conn.execute(f'CREATE DATABASE "{db["NAME"]}"')
                log(f"created database {db['NAME']}")
    started = time.monotonic()
    call_command("migrate", interactive=False, verbosity=0)
    log(f"migrated in {time.monotonic() - started:.1f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=10_000, help="tickets (default 10000)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.size < 1:
        parser.error("--size must be at least 1")
    setup_django()
    ensure_database()
    ensure_dataset(args.size, seed=args.seed)


if __name__ == "__main__":
    main()
