"""``manage.py seed_demo``: a local demo workspace with two months of believable history.

The demo workspace is the one with the slug ``demo``. When it exists the command only prints
the login (``manage.py serve`` runs it at every start, so that path is one query); with
``--reset`` it deletes the workspace, and the demo agents' accounts that belong to no other
workspace, and seeds again. Everything happens in one transaction: a failed seed leaves the
database as it was. The login (``demo@enque.local``, a superuser and the workspace owner)
has a published password, which the other demo agents share so their roles can be tried;
hence the command only runs with ``ENVIRONMENT=development``.

How the history is made. Every ticket, comment, assignment, status change and merge goes
through the ticket services, so the demo has the same rows and ``TicketEvent`` history as
real use. The services stamp "now"; the command plans each thread on a timeline over the
last ~60 days first, performs all steps of all tickets in the order of that timeline, and
notes the (real) time window of each step. Afterwards every timestamp written inside a
step's window is moved to that step's planned time with bulk updates. Because the steps run
in planned order, that mapping keeps the order of everything the services compared or
derived (``first_response_at >= created_at``, the latest reply of a merge, ticket numbers
rising with ``created_at``), and every value stays one the services themselves set.

Side effects are muted while seeding: the history is imported, it is not happening now, so
the on-commit listeners (realtime, event automations, outbound mail) must not react to it.
The demo automations' effects are part of the history instead, written under the
automation as the actor.

Rows without a service yet (categories, tags, canned replies, business hours, SLA policies,
workflows and automations) are created directly.
"""

from __future__ import annotations

import random
import re
import time
import unicodedata
from argparse import ArgumentTypeError
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from automation.models import (
    ActionType,
    Automation,
    AutomationAction,
    AutomationCondition,
    BusinessHours,
    BusinessHoursSlot,
    ConditionField,
    ConditionOperator,
    Holiday,
    MatchMode,
    SLAPolicy,
    SLATarget,
    Trigger,
    Workflow,
)
from tickets import hooks
from tickets.actors import Actor
from tickets.models import (
    CannedReply,
    Category,
    Comment,
    CommentVia,
    ScheduledComment,
    Tag,
    Ticket,
    TicketBody,
    TicketCounter,
    TicketEvent,
    TicketPriority,
    TicketStatus,
    TicketTag,
)
from tickets.services import (
    comment_create,
    comment_schedule,
    ticket_create,
    ticket_merge,
    ticket_update,
)
from workspaces import demo_content as content
from workspaces.models import (
    Agent,
    AgentRole,
    Company,
    CompanyDomain,
    Customer,
    Team,
    TeamMembership,
    User,
    Workspace,
)
from workspaces.services import (
    agent_add,
    company_create,
    customer_get_or_create,
    team_create,
    user_create,
    workspace_create,
)

# Every tenant model the seed writes: their timestamps are moved onto the demo's timeline.
SEEDED_MODELS: tuple[type[models.Model], ...] = (
    Agent,
    Team,
    TeamMembership,
    Company,
    CompanyDomain,
    Customer,
    TicketCounter,
    Category,
    Tag,
    CannedReply,
    BusinessHours,
    BusinessHoursSlot,
    Holiday,
    SLAPolicy,
    SLATarget,
    Workflow,
    Automation,
    AutomationCondition,
    AutomationAction,
    Ticket,
    TicketBody,
    TicketTag,
    Comment,
    TicketEvent,
    ScheduledComment,
)

HISTORY_DAYS = 60
# The workspace and its people and settings date from before the first ticket.
FOUNDED_DAYS_AGO = 90

PRIORITIES = (TicketPriority.LOW, TicketPriority.NORMAL, TicketPriority.HIGH, TicketPriority.URGENT)
# Where a ticket ends up, by its age in days: old ones are mostly done, new ones mostly not.
# (The time rules then turn stale pending tickets into resolved, and old resolved ones into
# closed, as they would have.)
STATUS_BY_AGE: tuple[tuple[float, dict[str, int]], ...] = (
    (1, {"new": 45, "open": 30, "pending": 12, "on_hold": 3, "resolved": 10, "closed": 0}),
    (4, {"new": 10, "open": 25, "pending": 25, "on_hold": 8, "resolved": 32, "closed": 0}),
    (10, {"new": 5, "open": 16, "pending": 12, "on_hold": 10, "resolved": 17, "closed": 40}),
    # A backlog: some old tickets are still open or on hold.
    (float("inf"), {"new": 2, "open": 8, "pending": 4, "on_hold": 7, "resolved": 9, "closed": 70}),
)
OUTBOUND_SHARE = 0.06

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class Command(BaseCommand):
    help = (
        "Create the local demo workspace (slug 'demo') with agents, customers, settings and "
        "a few hundred tickets of history; print the demo login. Does nothing but print the "
        "login when the demo exists, unless --reset."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--tickets",
            type=int,
            default=300,
            help="How many tickets to create (default 300).",
        )
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Delete the demo workspace (and demo accounts in no other workspace) first.",
        )
        parser.add_argument(
            "--as-of",
            type=_as_of,
            default=None,
            metavar="DATETIME",
            help=(
                "End the history at this past moment instead of now (ISO 8601; without an "
                "offset, in the demo's zone). The same moment gives the same demo."
            ),
        )

    def handle(
        self, *args: Any, tickets: int, reset: bool, as_of: datetime | None, **options: Any
    ) -> None:
        if settings.ENVIRONMENT != "development":
            # The demo login is a superuser with a published password: never on a server.
            # Not an error, so that a start-up script may call it everywhere.
            self.stderr.write(
                f"seed_demo: skipped; it only runs with ENVIRONMENT=development "
                f"(this is {settings.ENVIRONMENT})."
            )
            return
        if tickets < 0:
            raise CommandError("--tickets must be zero or more.")
        if as_of is not None and as_of > timezone.now():
            raise CommandError("--as-of must not be in the future.")
        found = Workspace.objects.filter(slug=content.DEMO_SLUG).first()
        if found and not reset:
            self.stdout.write(
                f'The demo workspace "{found.name}" exists; '
                "`manage.py seed_demo --reset` rebuilds it."
            )
            self._banner()
            return

        started = time.monotonic()
        try:
            with _ticket_hooks_muted(), transaction.atomic():
                # Checked again inside the transaction: a second `serve` starting at the same
                # moment waits here for the first one's commit (SQLite takes the write lock
                # at BEGIN; on PostgreSQL the unique slug stops the loser below).
                existing = Workspace.objects.filter(slug=content.DEMO_SLUG).first()
                if existing and not reset:
                    raise _AlreadySeeded
                if existing:
                    demo_delete(existing)
                summary = DemoSeeder(ticket_count=tickets, as_of=as_of).run()
        except _AlreadySeeded:
            self._seeded_elsewhere()
            return
        except IntegrityError:
            # Only a seed racing this one explains a clash on a fresh database; anything
            # else is a bug to see.
            if found or not Workspace.objects.filter(slug=content.DEMO_SLUG).exists():
                raise
            self._seeded_elsewhere()
            return
        elapsed = time.monotonic() - started
        self.stdout.write(
            f'Seeded "{content.DEMO_WORKSPACE_NAME}" in {elapsed:.1f} s: '
            + ", ".join(f"{count} {name}" for name, count in summary.items())
            + "."
        )
        self._banner()

    def _seeded_elsewhere(self) -> None:
        self.stdout.write("Another process has just seeded the demo workspace.")
        self._banner()

    def _banner(self) -> None:
        lines = (
            f"Enque demo   {content.ADMIN_URL}",
            f"Email        {content.DEMO_EMAIL}",
            f"Password     {content.DEMO_PASSWORD}",
        )
        width = max(len(line) for line in lines) + 4
        border = "+" + "-" * width + "+"
        self.stdout.write(border, self.style.SUCCESS)
        for line in lines:
            self.stdout.write(f"|  {line.ljust(width - 4)}  |", self.style.SUCCESS)
        self.stdout.write(border, self.style.SUCCESS)


class _AlreadySeeded(Exception):
    pass


def _as_of(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ArgumentTypeError(f"{value!r} is not an ISO 8601 date and time") from None
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=ZoneInfo(content.DEMO_TIMEZONE))
    return moment


@contextmanager
def _ticket_hooks_muted() -> Iterator[None]:
    """No realtime events, event automations or outbound mail for the imported history.

    The listeners are restored after the seed's transaction has committed: its on-commit
    callbacks run inside this block and find no listener. That holds when the seed's
    transaction is the outermost one, as under ``manage.py`` (a caller's own transaction
    would run them later, with the listeners back). ``tickets.hooks`` has no public way to
    list its listeners yet, hence the read of ``_listeners``.
    """
    listeners = list(hooks._listeners)
    for listener in listeners:
        hooks.unsubscribe(listener)
    try:
        yield
    finally:
        for listener in listeners:
            hooks.subscribe(listener)


def demo_delete(workspace: Workspace) -> None:
    """Delete the demo workspace, and the demo agents' accounts that are in no other one."""
    demo_emails = [agent.email for agent in content.AGENTS]
    user_ids = list(Agent.objects.for_workspace(workspace).values_list("user_id", flat=True))
    # Tickets protect their customers (on_delete=PROTECT): they go first.
    Ticket.objects.for_workspace(workspace).delete()
    workspace.delete()
    User.objects.filter(pk__in=user_ids, email__in=demo_emails, agents__isnull=True).delete()


# --- Planning ------------------------------------------------------------------------------


@dataclass
class TicketPlan:
    scenario: content.Scenario
    variant: content.Variant
    customer: Customer
    created_at: datetime
    status: str
    channel: str
    priority: str
    subject: str
    context: dict[str, str]
    outbound: bool = False
    assignee: Agent | None = None
    # The triage step (assignment) is on the timeline, not cut off by "now".
    assigned: bool = False
    team: Team | None = None
    tags: set[str] = field(default_factory=set)
    ticket: Ticket | None = None
    steps: list[Step] = field(default_factory=list)


@dataclass
class Step:
    at: datetime
    plan: TicketPlan
    run: Callable[[], object]
    # Planned, then performed, in (at, seq) order.
    seq: int = 0


class DemoSeeder:
    """Builds the demo workspace; call ``run()`` inside a transaction."""

    def __init__(self, *, ticket_count: int, as_of: datetime | None = None) -> None:
        self.ticket_count = ticket_count
        # The random stream of the ticket being planned: one per ticket, so that a branch
        # taken differently (a reply moved past a weekend) changes that ticket only.
        self.rng = _stream("setup")
        self.tz = ZoneInfo(content.DEMO_TIMEZONE)
        self.anchor = (as_of or timezone.now()).astimezone(UTC).replace(second=0, microsecond=0)
        self.founded = self.anchor - timedelta(days=FOUNDED_DAYS_AGO)
        # (real start, real end, planned time) of each performed step, in order.
        self.windows: list[tuple[datetime, datetime, datetime]] = []
        self.automation_runs: Counter[int] = Counter()
        self.automation_last_run: dict[int, datetime] = {}
        self._seq = 0
        # The planned time of the step being performed.
        self._planned_now = self.founded

    # -- the run --

    def run(self) -> dict[str, int]:
        self._at(self.founded, self._setup)
        plans = self._plan_tickets()
        steps = sorted((step for plan in plans for step in plan.steps), key=lambda s: (s.at, s.seq))
        for step in steps:
            self._at(step.at, step.run)
        self._backdate()
        self._record_automation_runs()
        ws = self.workspace
        return {
            "agents": Agent.objects.for_workspace(ws).count(),
            "customers": Customer.objects.for_workspace(ws).count(),
            "tickets": Ticket.objects.for_workspace(ws).count(),
            "comments": Comment.objects.for_workspace(ws).count(),
            "events": TicketEvent.objects.for_workspace(ws).count(),
        }

    def _at(self, planned: datetime, call: Callable[[], object]) -> None:
        """Perform one step and note the real time window its rows were stamped in."""
        start = timezone.now()
        if self.windows:
            # Windows must not touch, so that every stamp belongs to exactly one step.
            while start <= self.windows[-1][1]:
                start = timezone.now()
        self._planned_now = planned
        call()
        self.windows.append((start, timezone.now(), planned))

    # -- people and settings --

    def _setup(self) -> None:
        users, created_ids = [], []
        for spec in content.AGENTS:
            user = User.objects.filter(email__iexact=spec.email).first()
            if user is None:
                is_login = spec.email == content.DEMO_EMAIL
                user = user_create(
                    email=spec.email,
                    name=spec.name,
                    password=content.DEMO_PASSWORD if is_login else None,
                )
                created_ids.append(user.pk)
            users.append(user)
        login = users[0]
        if login.pk not in created_ids:
            # Kept from before (it is in another workspace too): the published password must
            # work all the same.
            login.set_password(content.DEMO_PASSWORD)
            login.save(update_fields=["password"])
        # The demo login may use the Django admin. No service sets staff flags yet.
        User.objects.filter(pk=login.pk).update(is_staff=True, is_superuser=True, is_active=True)
        # The other demo agents share the password, to try the roles; one hash is enough.
        User.objects.filter(pk__in=created_ids).exclude(pk=login.pk).update(
            password=User.objects.values_list("password", flat=True).get(pk=login.pk)
        )
        User.objects.filter(pk__in=created_ids).update(date_joined=self.founded)

        ws = workspace_create(
            name=content.DEMO_WORKSPACE_NAME, owner=login, timezone_name=content.DEMO_TIMEZONE
        )
        # workspace_create derives the slug from the name; the demo is found by a fixed one.
        Workspace.objects.filter(pk=ws.pk).update(
            slug=content.DEMO_SLUG, default_signature=content.DEMO_SIGNATURE
        )
        ws.refresh_from_db()
        self.workspace = ws

        self.agents: dict[str, Agent] = {}
        for spec, user in zip(content.AGENTS, users, strict=True):
            if spec.role == AgentRole.OWNER:
                agent = Agent.objects.for_workspace(ws).select_related("user").get(user=user)
            else:
                agent = agent_add(workspace=ws, user=user, role=spec.role)
            self.agents[spec.email] = agent
        self.admins = [a for a in self.agents.values() if a.is_admin]
        self.light_agents = [a for a in self.agents.values() if a.role == AgentRole.LIGHT]

        self.teams: dict[str, Team] = {}
        self.team_members: dict[str, list[Agent]] = {}
        for name, description in content.TEAMS.items():
            members = [self.agents[spec.email] for spec in content.AGENTS if name in spec.teams]
            self.teams[name] = team_create(
                workspace=ws, name=name, description=description, members=members
            )
            self.team_members[name] = [a for a in members if a.can_reply]

        self.companies: list[Company] = []
        for name, domains, notes in content.COMPANIES:
            company = company_create(workspace=ws, name=name, domains=domains)
            if notes:
                # company_create takes no notes.
                Company.objects.filter(pk=company.pk).update(notes=notes)
            self.companies.append(company)
        self.customers = self._create_customers()

        self.categories = {
            name: Category(workspace=ws, name=name, description=description)
            for name, description in content.CATEGORIES.items()
        }
        Category.objects.bulk_create(self.categories.values())
        Tag.objects.bulk_create(
            [Tag(workspace=ws, name=name, color=color) for name, color in content.TAGS.items()]
        )
        self.canned = {
            reply.title: CannedReply(
                workspace=ws,
                title=reply.title,
                body=reply.body,
                category=self.categories.get(reply.category),
                owner=self.agents[reply.owner] if reply.owner else None,
            )
            for reply in content.CANNED_REPLIES
        }
        CannedReply.objects.bulk_create(self.canned.values())
        hours = self._create_business_hours()
        self._create_sla_policies(hours)
        self._create_automations()

    def _create_customers(self) -> list[Customer]:
        customers = []
        personal = content.PERSONAL_DOMAINS
        for i, name in enumerate(content.CUSTOMER_NAMES):
            if i < content.COMPANY_CUSTOMERS:
                domain = content.COMPANIES[i % len(content.COMPANIES)][1][0]
            else:
                domain = personal[i % len(personal)]
            local = ".".join(_ascii_word(part) for part in name.split())
            customer, _ = customer_get_or_create(
                workspace=self.workspace, email=f"{local}@{domain}", name=name
            )
            customers.append(customer)
        return customers

    def _create_business_hours(self) -> BusinessHours:
        ws = self.workspace
        hours = BusinessHours.objects.create(
            workspace=ws, name="Office hours", timezone=content.DEMO_TIMEZONE, is_default=True
        )
        opens, closes = (clock.fromisoformat(value) for value in content.OPENING_HOURS)
        BusinessHoursSlot.objects.bulk_create(
            [
                BusinessHoursSlot(
                    workspace=ws,
                    business_hours=hours,
                    weekday=day,
                    opens_at=opens,
                    closes_at=closes,
                )
                for day in range(5)
            ]
        )
        year = self.anchor.astimezone(self.tz).year
        holidays = [
            Holiday(workspace=ws, business_hours=hours, date=date(year, month, day), name=name)
            for month, day, name in content.HOLIDAYS
        ]
        holidays.append(
            Holiday(workspace=ws, business_hours=hours, date=date(year + 1, 1, 1), name="New Year")
        )
        Holiday.objects.bulk_create(holidays)
        return hours

    def _create_sla_policies(self, hours: BusinessHours) -> None:
        ws = self.workspace
        vip = next(c for c in self.companies if c.name == content.VIP_COMPANY)
        enterprise = SLAPolicy.objects.create(
            workspace=ws,
            name=f"Enterprise ({vip.name})",
            description="Tighter targets from the enterprise contract.",
            business_hours=hours,
            company=vip,
            position=0,
        )
        standard = SLAPolicy.objects.create(
            workspace=ws,
            name="Standard",
            description="Every other ticket. Counted in office hours.",
            business_hours=hours,
            position=1,
        )
        SLATarget.objects.bulk_create(
            [
                SLATarget(
                    workspace=ws,
                    policy=policy,
                    priority=priority,
                    first_response_minutes=first,
                    resolution_minutes=resolution,
                )
                for policy, targets in (
                    (enterprise, content.SLA_ENTERPRISE),
                    (standard, content.SLA_STANDARD),
                )
                for priority, (first, resolution) in targets.items()
            ]
        )

    def _create_automations(self) -> None:
        ws = self.workspace
        triage = Workflow.objects.create(
            workspace=ws,
            name="Inbound triage",
            description="Route new tickets to the team that handles them.",
            trigger=Trigger.TICKET_CREATED,
            position=0,
        )
        rules = {
            "invoice": (
                Automation(
                    workspace=ws,
                    name="Invoices go to Billing",
                    workflow=triage,
                    trigger=Trigger.TICKET_CREATED,
                    match=MatchMode.ANY,
                    position=0,
                ),
                [
                    (ConditionField.SUBJECT, ConditionOperator.CONTAINS, keyword)
                    for keyword in content.INVOICE_KEYWORDS
                ],
                [
                    (ActionType.SET_TEAM, {"team_id": self.teams["Billing"].pk}),
                    (ActionType.ADD_TAGS, {"tags": ["billing"]}),
                ],
            ),
            "api": (
                Automation(
                    workspace=ws,
                    name="API questions go to Technical",
                    workflow=triage,
                    trigger=Trigger.TICKET_CREATED,
                    position=1,
                ),
                [(ConditionField.SUBJECT, ConditionOperator.CONTAINS, content.API_KEYWORD)],
                [
                    (ActionType.SET_TEAM, {"team_id": self.teams["Technical"].pk}),
                    (ActionType.ADD_TAGS, {"tags": ["api"]}),
                ],
            ),
            "urgent": (
                Automation(
                    workspace=ws,
                    name="Urgent tickets: notify the admins",
                    trigger=Trigger.TICKET_CREATED,
                    position=10,
                ),
                [(ConditionField.PRIORITY, ConditionOperator.IS, TicketPriority.URGENT)],
                [
                    (
                        ActionType.NOTIFY_AGENTS,
                        {
                            "agent_ids": [a.pk for a in self.admins],
                            "message": "Urgent ticket #{{ticket.number}}: {{ticket.subject}}",
                        },
                    )
                ],
            ),
            "resolve_pending": (
                Automation(
                    workspace=ws,
                    name=(
                        f"Resolve pending tickets after {content.AUTO_RESOLVE_PENDING_HOURS} "
                        "hours without an answer"
                    ),
                    trigger=Trigger.TIME,
                    position=20,
                ),
                [
                    (ConditionField.STATUS, ConditionOperator.IS, TicketStatus.PENDING),
                    (
                        ConditionField.HOURS_SINCE_UPDATED,
                        ConditionOperator.GREATER_THAN,
                        content.AUTO_RESOLVE_PENDING_HOURS,
                    ),
                ],
                [
                    (
                        ActionType.SEND_CANNED_REPLY,
                        {"canned_reply_id": self.canned["Closing: no response"].pk},
                    ),
                    (ActionType.SET_STATUS, {"status": TicketStatus.RESOLVED}),
                ],
            ),
            "close_resolved": (
                Automation(
                    workspace=ws,
                    name=(
                        f"Close resolved tickets after "
                        f"{content.AUTO_CLOSE_RESOLVED_HOURS // 24} days"
                    ),
                    trigger=Trigger.TIME,
                    position=21,
                ),
                [
                    (ConditionField.STATUS, ConditionOperator.IS, TicketStatus.RESOLVED),
                    (
                        ConditionField.HOURS_SINCE_UPDATED,
                        ConditionOperator.GREATER_THAN,
                        content.AUTO_CLOSE_RESOLVED_HOURS,
                    ),
                ],
                [(ActionType.SET_STATUS, {"status": TicketStatus.CLOSED})],
            ),
        }
        Automation.objects.bulk_create([rule for rule, _, _ in rules.values()])
        AutomationCondition.objects.bulk_create(
            [
                AutomationCondition(
                    workspace=ws, automation=rule, field=f, operator=op, value=value, position=i
                )
                for rule, conditions, _ in rules.values()
                for i, (f, op, value) in enumerate(conditions)
            ]
        )
        AutomationAction.objects.bulk_create(
            [
                AutomationAction(
                    workspace=ws, automation=rule, action_type=kind, params=params, position=i
                )
                for rule, _, actions in rules.values()
                for i, (kind, params) in enumerate(actions)
            ]
        )
        self.rules = {key: rule for key, (rule, _, _) in rules.items()}

    # -- the timeline --

    def _plan_tickets(self) -> list[TicketPlan]:
        duplicates = 2 if self.ticket_count >= 20 else min(self.ticket_count // 5, 1)
        created = self._creation_times(self.ticket_count - duplicates)
        # A few customers write a lot, most a little.
        weights = [1 / (rank + 3) ** 0.9 for rank in range(len(self.customers))]
        customers = _stream("customers").sample(self.customers, len(self.customers))
        scenario_weights = [s.weight for s in content.SCENARIOS]

        plans = []
        for i, at in enumerate(created):
            self.rng = rng = _stream(f"ticket:{i}")
            outbound = rng.random() < OUTBOUND_SHARE
            if outbound:
                scenario = rng.choice(content.OUTBOUND_SCENARIOS)
            else:
                scenario = rng.choices(content.SCENARIOS, scenario_weights)[0]
            customer = rng.choices(customers, weights)[0]
            plan = self._new_plan(scenario, customer, at, outbound=outbound)
            self._plan_thread(plan)
            plans.append(plan)

        # Customers who wrote twice about one thing: the second ticket is merged away.
        self.rng = rng = _stream("duplicates")
        candidates = [
            p
            for p in plans
            if not p.outbound
            and p.status != TicketStatus.NEW
            and p.created_at < self.anchor - timedelta(days=4)
        ]
        for target in rng.sample(candidates, min(duplicates, len(candidates))):
            plans.append(self._plan_duplicate(target))

        # One reply waits to be sent tomorrow morning.
        waiting = [
            p
            for p in plans
            if p.status == TicketStatus.OPEN
            and not p.outbound
            and p.assigned
            and p.steps[-1].at < self.anchor - timedelta(minutes=30)
        ]
        if waiting:
            self._plan_scheduled_reply(waiting[-1])
        return plans

    def _creation_times(self, count: int) -> list[datetime]:
        rng, times = _stream("created"), []
        latest = self.anchor - timedelta(minutes=1)
        for _ in range(count):
            # Always four draws per ticket, whatever the branches: the stream stays aligned.
            age, weekend, night, hour = (rng.random() for _ in range(4))
            # Denser towards today: the helpdesk is growing.
            local = (self.anchor - timedelta(days=HISTORY_DAYS * age**1.5)).astimezone(self.tz)
            if local.weekday() >= 5 and weekend < 0.7:
                local -= timedelta(days=local.weekday() - 4)  # most weekend mail: Friday's
            if not 7 <= local.hour < 20 and night < 0.75:
                local = local.replace(hour=8 + int(hour * 10))  # most mail: daytime
            times.append(min(local.astimezone(UTC), latest).replace(microsecond=0))
        return sorted(times)

    def _new_plan(
        self, scenario: content.Scenario, customer: Customer, at: datetime, *, outbound: bool
    ) -> TicketPlan:
        rng = self.rng
        age_days = (self.anchor - at).total_seconds() / 86400
        by_status = next(table for limit, table in STATUS_BY_AGE if age_days < limit)
        status = rng.choices(list(by_status), list(by_status.values()))[0]
        priority = rng.choices(PRIORITIES, scenario.priorities)[0]
        if priority == TicketPriority.LOW and self._is_vip(customer):
            priority = TicketPriority.NORMAL
        variant = rng.choice(scenario.variants)
        context = {
            "first": customer.first_name,
            "order": f"ORD-{rng.randint(10000, 99999)}",
            "invoice": f"INV-{at.year}-{rng.randint(1000, 9999)}",
            "amount": rng.choice(content.AMOUNTS),
            "model": rng.choice(content.PRINTER_MODELS),
        }
        return TicketPlan(
            scenario=scenario,
            variant=variant,
            customer=customer,
            created_at=at,
            status=status,
            channel=rng.choice(scenario.channels),
            priority=priority,
            subject=_render(rng.choice(variant.subjects), context),
            context=context,
            outbound=outbound,
        )

    def _add(self, plan: TicketPlan, at: datetime, run: Callable[[], object]) -> datetime:
        """Plan a step at ``at`` (after the ticket's previous one); steps past now are dropped."""
        if plan.steps:
            at = max(at, plan.steps[-1].at + timedelta(seconds=1))
        if at > self.anchor:
            return at
        self._seq += 1
        plan.steps.append(Step(at=at, plan=plan, run=run, seq=self._seq))
        return at

    def _plan_thread(self, p: TicketPlan) -> None:
        rng, s, v = self.rng, p.scenario, p.variant
        if p.outbound:
            self._plan_outbound(p)
            return
        t = self._add(p, p.created_at, partial(self._create, p))
        route = self._routing_rule(p.subject)
        if route:
            t = self._add(
                p, t + timedelta(seconds=rng.randint(2, 20)), partial(self._route, p, route)
            )
        if p.status == TicketStatus.NEW:
            if not route and rng.random() < 0.4:
                admin = rng.choice(self.admins)
                t = self._add(
                    p, self._agent_time(t, 10, 240), partial(self._route_by_admin, p, admin)
                )
            if rng.random() < 0.3:
                text = rng.choice(content.CUSTOMER_CHASERS)
                self._add(
                    p,
                    self._customer_time(t, 6 * 60, 48 * 60),
                    partial(self._customer_says, p, text),
                )
            return

        p.assignee = rng.choice(self.team_members[s.team])
        # The assignee takes the ticket, or an admin hands it out.
        by = p.assignee if rng.random() < 0.6 else rng.choice(self.admins)
        t = self._add(p, self._agent_time(t, 5, 240), partial(self._triage, p, by))
        p.assigned = t <= self.anchor
        if rng.random() < 0.2:
            text = v.note or rng.choice(content.GENERIC_NOTES)
            author = rng.choice([*self.light_agents, *self.team_members[s.team]])
            t = self._add(p, self._agent_time(t, 3, 90), partial(self._note, p, author, text))
        if p.status == TicketStatus.OPEN and rng.random() < 0.3:
            return  # assigned, not answered yet

        t = self._agent_time(t, 2, 180)
        if p.status == TicketStatus.PENDING:
            # Pending tickets wait on the customer since recently: older ones would have
            # been resolved by the 72-hour rule (which _plan_pending_end plays when due).
            t = max(t, self.anchor - timedelta(hours=rng.uniform(1, 60)))
            t = self._add(p, t, partial(self._reply, p, v.reply, TicketStatus.PENDING))
            self._plan_pending_end(p, t)
            return
        wait_on_customer = rng.random() < 0.6
        t = self._add(
            p,
            t,
            partial(
                self._reply,
                p,
                v.reply,
                TicketStatus.PENDING if wait_on_customer else None,
            ),
        )
        done = p.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED)
        if wait_on_customer and done and rng.random() < 0.15:
            self._plan_pending_end(p, t)  # the customer never answered
            return
        t = self._add(
            p,
            self._customer_time(t, 20, 30 * 60),
            partial(self._customer_says, p, v.follow_up),
        )
        if p.status == TicketStatus.OPEN:
            return
        if p.status == TicketStatus.ON_HOLD:
            text = rng.choice(content.ON_HOLD_NOTES)
            t = self._add(p, self._agent_time(t, 5, 120), partial(self._note, p, p.assignee, text))
            self._add(
                p,
                t + timedelta(minutes=rng.randint(1, 3)),
                partial(self._set_status, p, TicketStatus.ON_HOLD),
            )
            return
        t = self._add(
            p,
            self._agent_time(t, 5, 300),
            partial(self._reply, p, v.resolution, TicketStatus.RESOLVED),
        )
        if rng.random() < 0.3:
            # "Thanks!" reopens the ticket; the agent resolves it again.
            thanks = rng.choice(content.CUSTOMER_THANKS)
            t = self._add(
                p, self._customer_time(t, 10, 12 * 60), partial(self._customer_says, p, thanks)
            )
            t = self._add(
                p, self._agent_time(t, 2, 60), partial(self._set_status, p, TicketStatus.RESOLVED)
            )
        self._plan_close(p, t)

    def _plan_outbound(self, p: TicketPlan) -> None:
        rng, s, v = self.rng, p.scenario, p.variant
        p.assignee = rng.choice(self.team_members[s.team])
        t = self._add(p, p.created_at, partial(self._create, p))
        if p.status in (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING):
            self._plan_pending_end(p, t)
            return
        t = self._add(
            p, self._customer_time(t, 30, 24 * 60), partial(self._customer_says, p, v.follow_up)
        )
        if p.status == TicketStatus.ON_HOLD:
            text = rng.choice(content.ON_HOLD_NOTES)
            t = self._add(p, self._agent_time(t, 5, 120), partial(self._note, p, p.assignee, text))
            self._add(
                p, t + timedelta(minutes=2), partial(self._set_status, p, TicketStatus.ON_HOLD)
            )
            return
        t = self._add(
            p,
            self._agent_time(t, 5, 240),
            partial(self._reply, p, v.resolution, TicketStatus.RESOLVED),
        )
        self._plan_close(p, t)

    def _plan_pending_end(self, p: TicketPlan, pending_at: datetime) -> None:
        """The time rule resolves a ticket left pending for 72 hours (and then closes it)."""
        due = pending_at + timedelta(hours=content.AUTO_RESOLVE_PENDING_HOURS)
        t = self._add(
            p, due + timedelta(minutes=self.rng.randint(1, 5)), partial(self._auto_resolve, p)
        )
        self._plan_close(p, t)

    def _plan_close(self, p: TicketPlan, resolved_at: datetime) -> None:
        due = resolved_at + timedelta(hours=content.AUTO_CLOSE_RESOLVED_HOURS)
        self._add(p, due + timedelta(minutes=self.rng.randint(1, 5)), partial(self._auto_close, p))

    def _plan_duplicate(self, target: TicketPlan) -> TicketPlan:
        rng = self.rng
        at = target.created_at + timedelta(hours=rng.uniform(3, 20))
        dup = TicketPlan(
            scenario=target.scenario,
            variant=target.variant,
            customer=target.customer,
            created_at=at.replace(microsecond=0),
            status=TicketStatus.CLOSED,
            channel="email",
            priority=TicketPriority.NORMAL,
            subject=f"Second request: {target.subject}",
            context=target.context,
        )
        opening = rng.choice(content.DUPLICATE_OPENINGS).replace("{subject}", target.subject)
        t = self._add(dup, dup.created_at, partial(self._create, dup, opening))
        merger = target.assignee or self.admins[-1]
        self._add(dup, self._agent_time(t, 10, 120), partial(self._merge, dup, target, merger))
        return dup

    def _plan_scheduled_reply(self, p: TicketPlan) -> None:
        at = p.steps[-1].at + timedelta(minutes=self.rng.randint(5, 25))
        self._add(p, min(at, self.anchor), partial(self._schedule, p))

    def _agent_time(self, t: datetime, low: float, high: float) -> datetime:
        """``low`` to ``high`` minutes later, usually moved into office hours."""
        # Always three draws, whatever the branch (see __init__).
        delay, from_home, settle = (self.rng.random() for _ in range(3))
        t = t + timedelta(minutes=low + (high - low) * delay)
        local = t.astimezone(self.tz)
        opens, closes = (clock.fromisoformat(value) for value in content.OPENING_HOURS)
        if (local.weekday() < 5 and opens <= local.time() < closes) or from_home < 0.15:
            return t
        day = local.date() if local.time() < opens else local.date() + timedelta(days=1)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        start = datetime.combine(day, opens, tzinfo=self.tz)
        return (start + timedelta(minutes=5 + 85 * settle)).astimezone(UTC)

    def _customer_time(self, t: datetime, low: float, high: float) -> datetime:
        return t + timedelta(minutes=self.rng.uniform(low, high))

    def _routing_rule(self, subject: str) -> str | None:
        lowered = subject.lower()
        if any(keyword in lowered for keyword in content.INVOICE_KEYWORDS):
            return "invoice"
        if content.API_KEYWORD in lowered:
            return "api"
        return None

    # -- the steps (each calls a service) --

    def _create(self, p: TicketPlan, opening: str | None = None) -> None:
        s = p.scenario
        if p.outbound:
            actor = Actor.for_agent(p.assignee)
            body = (
                f"Hi {p.customer.first_name},\n\n"
                + _render(p.variant.opening, p.context)
                + self._signature(p.assignee)
            )
            p.team = self.teams[s.team]
            p.tags = set(s.tags)
            p.ticket = ticket_create(
                workspace=self.workspace,
                actor=actor,
                subject=p.subject,
                customer=p.customer,
                body_text=body,
                channel=p.channel,
                priority=p.priority,
                status=TicketStatus.PENDING,
                assignee=p.assignee,
                team=p.team,
                category=self.categories[s.category],
                tags=sorted(p.tags),
            )
            return
        text = opening or p.variant.opening
        # Mail arrives at normal priority; web forms and API clients may say otherwise.
        priority = TicketPriority.NORMAL if p.channel == "email" else p.priority
        p.ticket = ticket_create(
            workspace=self.workspace,
            actor=Actor.for_customer(p.customer),
            subject=p.subject,
            customer=p.customer,
            body_text=self._from_customer(p, _render(text, p.context)),
            channel=p.channel,
            priority=priority,
        )
        if priority == TicketPriority.URGENT:
            self._count_run("urgent")

    def _route(self, p: TicketPlan, rule: str) -> None:
        automation = self.rules[rule]
        p.team = self.teams["Billing" if rule == "invoice" else "Technical"]
        p.tags |= {"billing"} if rule == "invoice" else {"api"}
        ticket_update(
            ticket=p.ticket,
            actor=Actor.for_automation(automation.pk),
            team=p.team,
            tags=sorted(p.tags),
        )
        self._count_run(rule)

    def _route_by_admin(self, p: TicketPlan, admin: Agent) -> None:
        p.team = self.teams[p.scenario.team]
        ticket_update(
            ticket=p.ticket,
            actor=Actor.for_agent(admin),
            team=p.team,
            category=self.categories[p.scenario.category],
        )

    def _triage(self, p: TicketPlan, by: Agent) -> None:
        s = p.scenario
        p.team = p.team or self.teams[s.team]
        p.tags |= set(s.tags)
        if self._is_vip(p.customer):
            p.tags.add("vip")
        ticket_update(
            ticket=p.ticket,
            actor=Actor.for_agent(by),
            assignee=p.assignee,
            team=p.team,
            priority=p.priority,
            category=self.categories[s.category],
            tags=sorted(p.tags),
        )

    def _reply(self, p: TicketPlan, text: str, status: str | None) -> None:
        body = f"Hi {p.customer.first_name},\n\n{self._text(p, text)}" + self._signature(p.assignee)
        comment_create(
            ticket=p.ticket, actor=Actor.for_agent(p.assignee), body_text=body, status=status
        )

    def _customer_says(self, p: TicketPlan, text: str) -> None:
        comment_create(
            ticket=p.ticket,
            actor=Actor.for_customer(p.customer),
            body_text=self._from_customer(p, self._text(p, text)),
            via=CommentVia.EMAIL if p.channel == "email" else CommentVia.WEB,
        )

    def _note(self, p: TicketPlan, author: Agent, text: str) -> None:
        comment_create(
            ticket=p.ticket,
            actor=Actor.for_agent(author),
            body_text=self._text(p, text),
            internal=True,
        )

    def _set_status(self, p: TicketPlan, status: str) -> None:
        ticket_update(ticket=p.ticket, actor=Actor.for_agent(p.assignee), status=status)

    def _auto_resolve(self, p: TicketPlan) -> None:
        reply = self.canned["Closing: no response"]
        comment_create(
            ticket=p.ticket,
            actor=Actor.for_automation(self.rules["resolve_pending"].pk),
            body_text=_render_canned(reply.body, p.customer, p.ticket, agent=None),
            via=CommentVia.AUTOMATION,
            status=TicketStatus.RESOLVED,
        )
        self._count_run("resolve_pending")

    def _auto_close(self, p: TicketPlan) -> None:
        ticket_update(
            ticket=p.ticket,
            actor=Actor.for_automation(self.rules["close_resolved"].pk),
            status=TicketStatus.CLOSED,
        )
        self._count_run("close_resolved")

    def _merge(self, dup: TicketPlan, target: TicketPlan, by: Agent) -> None:
        ticket_merge(source=dup.ticket, target=target.ticket, actor=Actor.for_agent(by))

    def _schedule(self, p: TicketPlan) -> None:
        # Real time: it goes out (through the beat task) on the next office morning.
        now = timezone.now().astimezone(self.tz)
        day = now.date() + timedelta(days=1)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        send_at = datetime.combine(day, clock(9, 30), tzinfo=self.tz)
        text = (
            "Just checking in: did the steps from my last message help? If the problem is "
            "still there, reply with a screenshot and I'll dig deeper."
        )
        comment_schedule(
            ticket=p.ticket,
            actor=Actor.for_agent(p.assignee),
            send_at=send_at,
            body_text=f"Hi {p.customer.first_name},\n\n{text}" + self._signature(p.assignee),
        )

    def _count_run(self, rule: str) -> None:
        pk = self.rules[rule].pk
        self.automation_runs[pk] += 1
        # Steps run in planned order: this one is the latest so far.
        self.automation_last_run[pk] = self._planned_now

    def _is_vip(self, customer: Customer) -> bool:
        return customer.company is not None and customer.company.name == content.VIP_COMPANY

    def _text(self, p: TicketPlan, text: str) -> str:
        return _render(text, {**p.context, "number": str(p.ticket.number)})

    def _from_customer(self, p: TicketPlan, text: str) -> str:
        customer = p.customer
        sender = customer.name + (f"\n{customer.company.name}" if customer.company else "")
        return f"{text}\n\n{sender}"

    def _signature(self, agent: Agent) -> str:
        return f"\n\nBest regards,\n{agent.name}"

    # -- after the steps --

    def _backdate(self) -> None:
        """Move every stamp written inside a step's window to the step's planned time."""
        starts = [start for start, _, _ in self.windows]

        def planned(value: datetime | None) -> datetime | None:
            if value is None:
                return None
            i = bisect_right(starts, value) - 1
            if i >= 0 and value <= self.windows[i][1]:
                return self.windows[i][2]
            return value

        ws = self.workspace
        Workspace.objects.filter(pk=ws.pk).update(created_at=self.founded, updated_at=self.founded)
        for model in SEEDED_MODELS:
            names = [
                f.attname
                for f in model._meta.concrete_fields
                if isinstance(f, models.DateTimeField)
            ]
            moved = []
            for pk, *values in model._default_manager.filter(workspace=ws).values_list(
                "pk", *names
            ):
                new = {}
                for name, old in zip(names, values, strict=True):
                    if (value := planned(old)) != old:
                        new[name] = value
                if new:
                    moved.append((pk, new))
            _update_columns(model, moved)

    def _record_automation_runs(self) -> None:
        for pk, runs in self.automation_runs.items():
            Automation.objects.filter(pk=pk).update(
                run_count=runs, last_run_at=self.automation_last_run[pk]
            )


def _update_columns(model: type[models.Model], rows: list[tuple[Any, dict[str, Any]]]) -> None:
    """Set new values on many rows with one ``UPDATE ... SET c = CASE pk WHEN ...`` a batch.

    What ``bulk_update`` does, minus its cost: it builds and resolves a Case/When expression
    per row and column, which for the demo's few thousand rows took longer than all the
    ticket services together. Values are parameters; names come from the model's meta.
    """
    if not rows:
        return
    qn, adapt = connection.ops.quote_name, connection.ops.adapt_datetimefield_value
    table, pk = qn(model._meta.db_table), qn(model._meta.pk.column)
    names = sorted({name for _, values in rows for name in values})
    # Two parameters per row and column, plus the row's id in the WHERE clause.
    batch = max(1, (connection.features.max_query_params or 30000) // (1 + 2 * len(names)))
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        assignments, params = [], []
        for name in names:
            column = qn(model._meta.get_field(name).column)
            whens = [(key, values[name]) for key, values in chunk if name in values]
            if not whens:
                continue
            assignments.append(
                f"{column} = CASE {pk} {' '.join(['WHEN %s THEN %s'] * len(whens))} "
                f"ELSE {column} END"
            )
            for key, value in whens:
                params += [key, adapt(value)]
        params += [key for key, _ in chunk]
        placeholders = ", ".join(["%s"] * len(chunk))
        sql = f"UPDATE {table} SET {', '.join(assignments)} WHERE {pk} IN ({placeholders})"  # noqa: S608 - names from model meta, values are parameters
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def _stream(name: str) -> random.Random:
    """A named random stream of the demo: the same numbers on every run."""
    return random.Random(f"{content.RANDOM_SEED}:{name}")  # noqa: S311 - demo data, no secret


def _render(text: str, context: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: context.get(m.group(1), m.group(0)), text)


def _render_canned(body: str, customer: Customer, ticket: Ticket, agent: Agent | None) -> str:
    values = {
        "customer.first_name": customer.first_name,
        "customer.name": customer.display_name,
        "ticket.number": str(ticket.number),
        "ticket.subject": ticket.subject,
        "agent.name": agent.name if agent else "",
    }
    return re.sub(r"\{\{\s*([\w.]+)\s*\}\}", lambda m: values.get(m.group(1), m.group(0)), body)


def _ascii_word(value: str) -> str:
    plain = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]", "", plain.lower())
