"""Rule engine benchmark: tickets per second through 50 active rules, one process.

    .venv/bin/python bench/automation_rules.py                    # SQLite (a scratch file)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enque .venv/bin/python bench/automation_rules.py
    .venv/bin/python bench/automation_rules.py --tickets 500

Three figures, on a scratch database created and migrated first and dropped at the end
(SQLite: a file in a temporary directory; PostgreSQL: ``enque_bench_rules`` on the server
of DATABASE_URL), with ``REDIS_URL=memory`` so every on-commit listener runs in-process:

1. **evaluation** — the 50 rules' conditions checked against every ticket (``Facts`` and
   ``conditions.matches``, what the engine does before firing), nothing written:
   tickets/s and condition checks/s;
2. **end to end** — tickets created through ``tickets.services.ticket_create``; each commit
   runs the hook listeners (SLA due times under one policy, the 50 rules — 40 of them on
   ``ticket_created`` — and their actions, with the changes those make running the rules
   of ``ticket_updated`` in turn, notifications, the realtime publish to the in-memory
   layer): tickets/s, with how many rules fired;
3. **time rules** — one beat tick of 10 time rules over every open ticket (the first tick
   fires; the second finds every window already fired): seconds per tick.

The rules are a realistic mix: subject/body keywords and regular expressions, sender
domains, priority, channel, tags, business hours, hours since creation; actions set team
and priority, tag, assign round-robin, add notes. Prints tickets/s and the counts.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent

WORDS = [
    "invoice",
    "refund",
    "printer",
    "login",
    "password",
    "error",
    "page",
    "account",
    "order",
    "shipping",
    "delivery",
    "crash",
    "slow",
    "export",
    "import",
    "api",
    "token",
    "webhook",
    "billing",
    "card",
    "charge",
    "cancel",
    "upgrade",
]
DOMAINS = ["acme.example", "globex.example", "initech.example", "umbrella.example", "gmail.com"]


def build_rules(workspace: Any, admin: Any, teams: list[Any]) -> int:
    from automation import services

    rng = random.Random(11)  # noqa: S311 - reproducible benchmark data, not secrets
    made = 0

    def rule(trigger: str, conditions: list, actions: list, match: str = "all") -> None:
        nonlocal made
        services.automation_create(
            workspace=workspace,
            actor=admin,
            name=f"Rule {made:02d}",
            trigger=trigger,
            match=match,
            conditions=[{"field": f, "operator": o, "value": v} for f, o, v in conditions],
            actions=[{"action_type": t, "params": p} for t, p in actions],
            position=made,
        )
        made += 1

    # 40 rules on ticket_created.
    for i in range(40):
        word = WORDS[i % len(WORDS)]
        kind = i % 8
        if kind == 0:
            conditions = [("subject", "contains", word)]
        elif kind == 1:
            conditions = [("subject", "matches", rf"\b{word}s?\b"), ("channel", "is", "email")]
        elif kind == 2:
            conditions = [("from_domain", "in", rng.sample(DOMAINS, 2))]
        elif kind == 3:
            conditions = [("body", "contains", word), ("priority", "gt", "low")]
        elif kind == 4:
            conditions = [("subject", "contains", word), ("subject", "contains", "urgent")]
        elif kind == 5:
            conditions = [("tags", "contains", "vip"), ("status", "in", ["new", "open"])]
        elif kind == 6:
            conditions = [("business_hours", "is", False), ("subject", "contains", word)]
        else:
            conditions = [("from_address", "contains", word), ("priority", "is", "urgent")]
        actions = [("add_tags", {"tags": [word]})]
        if i % 5 == 0:
            actions.append(("set_team", {"team_id": teams[i % len(teams)].pk}))
        if i % 7 == 0:
            actions.append(("set_priority", {"priority": "high"}))
        if i == 3:
            actions = [("assign_round_robin", {"team_id": teams[0].pk})]
        rule("ticket_created", conditions, actions, match="any" if kind == 4 else "all")
    # 5 on ticket_updated, 5 on replies.
    for _ in range(5):
        rule(
            "ticket_updated",
            [("priority", "is", "urgent"), ("tags", "not_contains", "escalated")],
            [("add_tags", {"tags": ["escalated"]})],
        )
    for _ in range(5):
        rule(
            "customer_replied", [("status", "is", "pending")], [("set_status", {"status": "open"})]
        )
    # Ten time rules, run by the third measure (inactive until then).
    for i in range(10):
        rule(
            "time",
            [("hours_since_created", "gt", 1 + i), ("status", "in", ["new", "open"])],
            [("add_tags", {"tags": [f"aged-{i}"]})],
        )
    from automation.models import Automation

    Automation.objects.filter(workspace=workspace, trigger="time").update(is_active=False)
    return made


def run(count: int) -> dict[str, Any]:
    from django.db import connection
    from django.utils import timezone

    from automation import conditions, engine
    from automation.models import Automation, AutomationRun
    from tickets.actors import Actor
    from tickets.models import Ticket
    from tickets.services import ticket_create
    from workspaces.models import Agent, AgentRole, Team, TeamMembership, User
    from workspaces.services import customer_get_or_create, workspace_create

    owner = User.objects.create_user("owner@bench.test", "x" * 16)
    workspace = workspace_create(name="Bench", owner=owner)
    admin = Agent.objects.get(workspace=workspace, user=owner)
    teams = []
    for t in range(3):
        team = Team.objects.create(workspace=workspace, name=f"Team {t}")
        for a in range(4):
            user = User.objects.create_user(f"agent{t}{a}@bench.test", "x" * 16)
            agent = Agent.objects.create(workspace=workspace, user=user, role=AgentRole.AGENT)
            TeamMembership.objects.create(workspace=workspace, team=team, agent=agent)
        teams.append(team)
    from automation import services as automation_services

    automation_services.sla_policy_create(
        workspace=workspace,
        actor=admin,
        name="Standard",
        targets=[
            {"priority": p, "first_response_minutes": 60, "resolution_minutes": 480}
            for p in ("low", "normal", "high", "urgent")
        ],
    )
    rules = build_rules(workspace, admin, teams)
    active = Automation.objects.filter(workspace=workspace, is_active=True).count()
    print(f"rules: {rules} ({active} active on events, 10 time rules)")

    rng = random.Random(5)  # noqa: S311 - reproducible benchmark data, not secrets
    customers = [
        customer_get_or_create(
            workspace=workspace, email=f"{rng.choice(WORDS)}{i}@{rng.choice(DOMAINS)}", name=f"C{i}"
        )[0]
        for i in range(100)
    ]
    filler = [
        "please",
        "help",
        "with",
        "my",
        "the",
        "a",
        "on",
        "it",
        "is",
        "not",
        "working",
        "since",
        "yesterday",
        "morning",
        "again",
        "thanks",
        "regards",
        "question",
        "about",
        "our",
        "team",
        "can",
        "you",
        "check",
        "this",
    ]
    plans = []
    for i in range(count):
        # One keyword a rule looks for, among ordinary words: most tickets match a few rules.
        words = [rng.choice(WORDS), *rng.sample(filler, 5)]
        rng.shuffle(words)
        plans.append(
            {
                "subject": " ".join(words + (["urgent"] if i % 9 == 0 else [])) + f" #{i}",
                "body_text": " ".join(rng.choices(filler, k=35) + rng.choices(WORDS, k=2)),
                "customer": rng.choice(customers),
                "priority": rng.choice(["low", "normal", "normal", "high", "urgent"]),
                "channel": "email" if i % 3 else "web",
                "tags": ["vip"] if i % 11 == 0 else [],
            }
        )

    # 2. End to end (first, so that 1 has tickets to read).
    runs_before = AutomationRun.objects.count()
    started = time.monotonic()
    for plan in plans:
        ticket_create(workspace=workspace, actor=Actor.for_customer(plan["customer"]), **plan)
    elapsed = e2e_elapsed = time.monotonic() - started
    fired = AutomationRun.objects.count() - runs_before
    print(
        f"end to end: {count} tickets created through 40 ticket_created rules in {elapsed:.1f} s: "
        f"{count / elapsed:.0f} tickets/s ({fired} firings, {fired / count:.1f} per ticket)"
    )

    # 1. Evaluation only: all 50 active rules' conditions against every ticket.
    rule_list = [
        rule
        for trigger in ("ticket_created", "ticket_updated", "customer_replied")
        for unit in engine.units_for(workspace.pk, trigger)
        for rule in unit.rules
    ]
    tickets = list(
        Ticket.objects.for_workspace(workspace)
        .select_related("customer", "workspace")
        .prefetch_related("tags")
    )
    now = timezone.now()
    schedule_cache: dict = {}
    checks = 0
    matched = 0
    started = time.monotonic()
    for ticket in tickets:
        facts = engine.facts_for(ticket, now=now, schedule_cache=schedule_cache)
        for rule in rule_list:
            checks += len(rule.conditions.all())
            matched += conditions.matches(rule.match, rule.conditions.all(), facts)
    elapsed = time.monotonic() - started
    print(
        f"evaluation: {len(tickets)} tickets x {len(rule_list)} active rules in {elapsed:.2f} s: "
        f"{len(tickets) / elapsed:.0f} tickets/s, {checks / elapsed:.0f} conditions/s "
        f"({matched} matches; the body is read once per ticket)"
    )

    # 3. Time rules: one tick over every open ticket, then a tick with nothing left to fire.
    Automation.objects.filter(workspace=workspace, trigger="time").update(is_active=True)
    later = timezone.now() + timedelta_hours(12)
    started = time.monotonic()
    first = engine.run_time_rules(now=later)
    first_s = time.monotonic() - started
    started = time.monotonic()
    second = engine.run_time_rules(now=later + timedelta_hours(0.02))
    second_s = time.monotonic() - started
    open_tickets = Ticket.objects.for_workspace(workspace).exclude(status="closed").count()
    print(
        f"time rules: 10 rules over {open_tickets} open tickets: first tick {first_s:.2f} s "
        f"({first} firings), next tick {second_s:.2f} s ({second} firings)"
    )
    print(f"database: {connection.vendor}, queries not counted (DEBUG off)")
    return {
        "database": connection.vendor,
        "tickets": count,
        "rules": rules,
        "active_rules": len(rule_list),
        "end_to_end_tickets_per_s": count / e2e_elapsed,
        "firings_per_ticket": fired / count,
        "evaluation_tickets_per_s": len(tickets) / elapsed,
        "conditions_per_s": checks / elapsed,
        "time_rules_first_tick_s": first_s,
        "time_rules_next_tick_s": second_s,
        "open_tickets": open_tickets,
    }


def timedelta_hours(hours: float) -> Any:
    from datetime import timedelta

    return timedelta(hours=hours)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=1000)
    args = parser.parse_args()
    run_benchmark(tickets=args.tickets)


def run_benchmark(*, tickets: int = 1000) -> dict[str, Any]:
    """The benchmark as a function, its figures as a dict (bench/run.py calls it in a
    process of its own: it sets environment variables and configures Django)."""
    postgres = bool(os.environ.get("DATABASE_URL"))
    scratch = Path(tempfile.mkdtemp(prefix="enque-bench-rules-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enque.settings")
    os.environ["ENQUE_VAR_DIR"] = str(scratch)
    os.environ["MEDIA_ROOT"] = str(scratch / "media")
    os.environ["REDIS_URL"] = "memory"
    os.environ["LOG_LEVEL"] = "warning"
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
    os.environ["TEST_DATABASE_NAME"] = (
        "enque_bench_rules" if postgres else str(scratch / "bench.sqlite3")
    )
    sys.path.insert(0, str(BASE_DIR))

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    settings.DEBUG = False  # no query log growing in memory
    started = time.monotonic()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    print(
        f"database: {connection.vendor} ({connection.settings_dict['NAME']}), "
        f"migrated in {time.monotonic() - started:.1f} s"
    )
    try:
        return run(tickets)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
