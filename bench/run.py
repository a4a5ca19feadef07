"""The benchmark suite: every hot path of Enque, measured on one generated workspace.

    .venv/bin/python bench/run.py                       # make bench: 10,000 tickets
    .venv/bin/python bench/run.py --size 1000000 --name full   # make bench-full (PostgreSQL)
    .venv/bin/python bench/run.py --only ui --size 100000      # the UI pages alone

Database and Redis: ``DATABASE_URL`` / ``REDIS_URL`` when set, else the embedded defaults
(a SQLite file and a private Redis under ``var/bench``). The dataset is
``bench/datagen.py``'s workspace ``bench-<size>``, generated on first use.

Sections (``--only`` picks some, comma-separated):

- ``api``: server time and query count of ``GET /v1/tickets`` (first page, a cursor page
  10,000 rows deep, each common filter, ``q=`` search), ``GET /v1/tickets/:n`` and its
  comments on a ticket with 50 comments, ``POST /v1/tickets/:n/reply`` (an internal note).
  In-process: the Django test client through the whole middleware stack, authenticated with
  an agent's JWT, each request timed and its queries captured (CaptureQueriesContext).
- ``floor``: each list page above fetched with ONE hand-written SQL query (psycopg, or
  sqlite3), the same rows and embedded objects: what the database alone costs. Every list
  figure is shown as a ratio to its floor.
- ``ui``: the inbox (default view, "All open", "All tickets") and the ticket page with
  50 comments, signed in as the agent, like ``api``.
- ``http``: throughput and latency against the real ASGI server (uvicorn, several worker
  processes on the same database) under 8 concurrent keep-alive clients from a separate
  process (``bench/http_load.py``): the list, the detail, and a mix with writes.
- ``ingest``: mail ingestion (``bench/ingest.py``'s ``run``), one process and several
  Celery workers, when that entry point exists.
- ``fanout``: websocket fan-out, 1,000 sockets (``bench/realtime_fanout.py``).
- ``rules``: rule evaluation with 50 active rules (``bench/automation_rules.py``).
- ``analytics``: the analytics overview (``bench/analytics.py``) when present.

Each in-process figure is the median / p90 / p99 / min / max over ``--repeat`` runs after
warm-up. The budgets of the performance issue are printed beside the figures they bind
(they are stated for PostgreSQL with 1,000,000 tickets). The table is printed and written
with the machine, the versions and the dataset to ``bench/results/<name>.json``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
BENCH_DIR = BASE_DIR / "bench"
RESULTS_DIR = BENCH_DIR / "results"
SECTIONS = ("api", "floor", "ui", "http", "ingest", "fanout", "rules", "analytics")
RESULT_PREFIX = "BENCH_RESULT "
# Limits high enough that the load never meets them: the benchmark measures serving, and
# the counters are still kept (in Redis) on every request, as in production.
NO_LIMITS = dict.fromkeys(
    ("RATELIMIT_AUTH", "RATELIMIT_API", "RATELIMIT_READ", "RATELIMIT_WRITE"), "1000000/m"
)
FIFTY_SUBJECT = "Bench: a ticket with fifty comments"
WRITE_SUBJECT = "Bench: the ticket replies are posted to"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def stats(values: list[float]) -> dict[str, float]:
    return {
        "median": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "min": min(values),
        "max": max(values),
        "runs": len(values),
    }


@dataclass
class Figure:
    key: str
    label: str
    unit: str  # "ms", "req/s", "msg/s", "events/s", "tickets/s"
    stats: dict[str, float] = field(default_factory=dict)
    queries: int | None = None
    floor_ms: float | None = None
    ratio: float | None = None
    budget: str = ""
    verdict: str = ""  # PASS, MISS, or "" when no budget binds the figure
    extra: dict[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass
class Budget:
    text: str
    check: Callable[[Figure], bool]


LIST_BUDGET = Budget(
    "≤8 q, ≤20 ms, ≤5x floor",
    lambda f: (
        (f.queries or 0) <= 8 and f.stats["median"] <= 20 and (f.ratio is None or f.ratio <= 5)
    ),
)
# The fan-out figure is a latency: events at a helpdesk's pace (a busy workspace changes a
# ticket every few seconds), not a flood that measures how long a queue grows.
FANOUT_EVENTS = 40
FANOUT_RATE = 2.0
SEARCH_BUDGET = Budget(
    "≤8 q, ≤100 ms", lambda f: (f.queries or 0) <= 8 and f.stats["median"] <= 100
)
TICKET_BUDGET = Budget(
    "≤12 q, ≤30 ms", lambda f: (f.queries or 0) <= 12 and f.stats["median"] <= 30
)
HTTP_LIST_BUDGET = Budget(
    "≥300 req/s, p99 ≤150 ms",
    lambda f: f.stats["median"] >= 300 and f.extra.get("latency_ms", {}).get("p99", 1e9) <= 150,
)
INGEST_BUDGET = Budget("≥300 msg/s (PostgreSQL)", lambda f: f.stats["median"] >= 300)
FANOUT_BUDGET = Budget("p99 ≤100 ms", lambda f: f.stats["p99"] <= 100)


def apply_budget(figure: Figure, budget: Budget | None) -> Figure:
    if budget is not None and figure.stats:
        figure.budget = budget.text
        figure.verdict = "PASS" if budget.check(figure) else "MISS"
    median = figure.stats.get("median")
    shown = "" if median is None else f"{median:,.1f} {figure.unit}"
    print(f"  {figure.label}: {shown} {figure.verdict}".rstrip(), flush=True)
    return figure


# --- Environment ---------------------------------------------------------------------------


def setup_django(size: int) -> None:
    sys.path.insert(0, str(BASE_DIR))
    sys.path.insert(0, str(BENCH_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enque.settings")
    if not os.environ.get("DATABASE_URL"):
        os.environ.setdefault("ENQUE_VAR_DIR", str(BASE_DIR / "var" / "bench"))
    os.environ.setdefault("LOG_LEVEL", "warning")
    os.environ.setdefault("JWT_ACCESS_MINUTES", "240")
    for name, value in NO_LIMITS.items():
        os.environ.setdefault(name, value)
    import django

    django.setup()


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    ram_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "ram_gib": ram_gib,
        "os": platform.platform(),
    }


def versions() -> dict[str, str]:
    import django
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            database = f"PostgreSQL {cursor.fetchone()[0]}"
        else:
            cursor.execute("SELECT sqlite_version()")
            database = f"SQLite {cursor.fetchone()[0]}"
    return {
        "python": platform.python_version(),
        "django": django.get_version(),
        "database": database,
    }


class EmbeddedRedis:
    """The private Redis of the embedded default, for this run (servers included)."""

    def __init__(self) -> None:
        from django.conf import settings

        self.handle = None
        if settings.REDIS_MODE == "embedded":
            from enque import embedded_redis

            self.handle = embedded_redis.ensure_running(settings.EMBEDDED_REDIS_SOCKET)

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.stop()


# --- The dataset and its special tickets ----------------------------------------------------


@dataclass
class Context:
    workspace: Any
    agent: Any
    token: str
    fifty: Any  # a ticket with 50 comments
    target: Any  # the ticket replies are posted to
    size: int


def prepare(size: int) -> Context:
    from datagen import ensure_database, ensure_dataset

    from enque.api.authentication import issue_tokens
    from tickets import services
    from tickets.actors import Actor
    from tickets.models import Comment, Ticket
    from workspaces.models import Agent, AgentRole, Customer

    ensure_database()
    workspace = ensure_dataset(size)
    agent = Agent.objects.select_related("user").get(workspace=workspace, role=AgentRole.OWNER)
    customer = Customer.objects.for_workspace(workspace).order_by("id").first()
    actor = Actor.for_agent(agent)

    def special(subject: str, comments: int) -> Ticket:
        ticket = Ticket.objects.for_workspace(workspace).filter(subject=subject).first()
        if ticket is None:
            ticket = services.ticket_create(
                workspace=workspace,
                actor=Actor.for_customer(customer),
                subject=subject,
                customer=customer,
                body_text="The first message of the benchmark's ticket.",
                channel="email",
                tags=["vip", "billing"],
            )
        have = Comment.objects.filter(ticket=ticket).count()
        for n in range(have, comments):
            services.comment_create(
                ticket=ticket,
                actor=actor if n % 2 else Actor.for_customer(customer),
                body_text=f"Message {n + 1} of the thread: the printer still shows an error.",
                internal=bool(n % 2 and n % 5 == 1),
            )
        return ticket

    fifty = special(FIFTY_SUBJECT, 50)
    target = special(WRITE_SUBJECT, 1)
    token = issue_tokens(agent)["access"]
    return Context(workspace, agent, token, fifty, target, size)


def dataset_counts(workspace: Any) -> dict[str, int]:
    from django.db import connection

    counts = {}
    with connection.cursor() as cursor:
        for name, table in (
            ("tickets", "tickets_ticket"),
            ("comments", "tickets_comment"),
            ("customers", "workspaces_customer"),
            ("companies", "workspaces_company"),
            ("agents", "workspaces_agent"),
            ("ticket_tags", "tickets_tickettag"),
            ("events", "tickets_ticketevent"),
        ):
            cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE workspace_id = %s", [workspace.pk])  # noqa: S608
            counts[name] = cursor.fetchone()[0]
    return counts


# --- In-process measurement ---------------------------------------------------------------


def timed_requests(
    call: Callable[[], Any], *, repeat: int, warmup: int = 3, expect: int = 200
) -> tuple[dict[str, float], int]:
    """Time ``call`` ``repeat`` times (after warm-up); the largest query count seen."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(warmup):
        call()
    times, cpu, queries = [], [], 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started, cpu_started = time.perf_counter(), time.thread_time()
            response = call()
            elapsed = time.perf_counter() - started
            cpu.append((time.thread_time() - cpu_started) * 1000)
        if response.status_code != expect:
            body = getattr(response, "content", b"")[:300]
            raise RuntimeError(f"unexpected {response.status_code}: {body!r}")
        times.append(elapsed * 1000)
        queries = max(queries, len(captured))
    # The CPU time of this thread beside the wall time: on a shared machine the wall time
    # includes waiting for a core, the CPU time does not (nor the database server's work).
    return {**stats(times), "cpu_median": percentile(cpu, 50)}, queries


def list_targets(ctx: Context) -> list[tuple[str, str, dict[str, str]]]:
    """(key, label, query params) of the list figures, with values from the dataset."""
    from tickets.models import Tag, Ticket
    from workspaces.models import Agent, Team

    ws = ctx.workspace
    assignee = (
        Agent.objects.for_workspace(ws)
        .exclude(pk=ctx.agent.pk)
        .order_by("id")
        .values_list("pk", flat=True)
        .first()
    )
    team = Team.objects.for_workspace(ws).order_by("id").values_list("pk", flat=True).first()
    tag = (
        Tag.objects.for_workspace(ws).filter(name="refund").values_list("name", flat=True).first()
        or "vip"
    )
    customer = Ticket.objects.filter(pk=ctx.fifty.pk).values_list("customer_id", flat=True).first()
    return [
        ("api.list.first", "GET /v1/tickets (first page)", {}),
        ("api.list.status", "GET /v1/tickets?status=open", {"status": "open"}),
        ("api.list.assignee", "GET /v1/tickets?assignee=<agent>", {"assignee": str(assignee)}),
        ("api.list.team", "GET /v1/tickets?team=<team>", {"team": str(team)}),
        ("api.list.tag", f"GET /v1/tickets?tag={tag}", {"tag": tag}),
        ("api.list.customer", "GET /v1/tickets?customer=<customer>", {"customer": str(customer)}),
        # A word in most tickets, one in two of them, and two words together.
        ("api.list.search", "GET /v1/tickets?q=printer", {"q": "printer"}),
        ("api.list.search_rare", "GET /v1/tickets?q=fifty", {"q": "fifty"}),
        ("api.list.search_two", "GET /v1/tickets?q=refund+printer", {"q": "refund printer"}),
    ]


def deep_cursor(client: Any, workspace_id: int, rows: int = 10_000) -> tuple[str, Any]:
    """The cursor of the page that starts ``rows`` rows deep, by following ``next`` links
    (100 rows a page), and the position (updated_at, id) of the row before it."""
    from tickets.models import Ticket

    url = "/v1/tickets?page_size=100"
    last = None
    for _ in range(rows // 100):
        response = client.get(url)
        body = response.json()
        if not body["next"]:
            break
        last = body["results"][-1]
        parts = urlsplit(body["next"])
        url = f"{parts.path}?{parts.query}"
    cursor = parse_qs(urlsplit(url).query)["cursor"][0]
    position = (
        Ticket.objects.filter(number=last["number"], workspace_id=workspace_id)
        .values_list("updated_at", "id")
        .first()
    )
    return cursor, position


def api_figures(
    ctx: Context, repeat: int, floors: Floors | None, search_repeat: int
) -> list[Figure]:
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ctx.token}")
    figures = []
    targets = list_targets(ctx)
    cursor, position = deep_cursor(client, ctx.workspace.pk)
    targets.insert(
        1, ("api.list.deep", "GET /v1/tickets (cursor 10,000 rows deep)", {"cursor": cursor})
    )
    for key, label, params in targets:
        from urllib.parse import urlencode

        url = "/v1/tickets" + (f"?{urlencode(params)}" if params else "")
        searching = key.startswith("api.list.search")
        runs = min(repeat, search_repeat) if searching else repeat
        if runs == 0:
            figures.append(Figure(key, label, "ms", note="skipped (--search-repeat 0)"))
            continue
        result, queries = timed_requests(
            lambda url=url: client.get(url), repeat=runs, warmup=1 if runs < repeat else 3
        )
        figure = Figure(key, label, "ms", result, queries)
        if floors is not None:
            floor = floors.measure(key, params, position, runs)
            figure.floor_ms = floor
            figure.ratio = result["median"] / floor if floor else None
        budget = SEARCH_BUDGET if searching else LIST_BUDGET
        figures.append(apply_budget(figure, budget))
    number = ctx.fifty.number
    result, queries = timed_requests(lambda: client.get(f"/v1/tickets/{number}"), repeat=repeat)
    figures.append(
        apply_budget(
            Figure("api.detail", "GET /v1/tickets/:n (50 comments)", "ms", result, queries),
            TICKET_BUDGET,
        )
    )
    result, queries = timed_requests(
        lambda: client.get(f"/v1/tickets/{number}/comments?page_size=50"), repeat=repeat
    )
    figures.append(
        apply_budget(
            Figure("api.comments", "GET /v1/tickets/:n/comments (50)", "ms", result, queries), None
        )
    )
    target = ctx.target.number
    result, queries = timed_requests(
        lambda: client.post(
            f"/v1/tickets/{target}/reply",
            {"body": "Benchmark note: checked the logs.", "internal": True},
            format="json",
        ),
        repeat=repeat,
        expect=201,
    )
    figures.append(
        apply_budget(
            Figure("api.reply", "POST /v1/tickets/:n/reply (note)", "ms", result, queries), None
        )
    )
    return figures


def ui_figures(ctx: Context, repeat: int) -> list[Figure]:
    from django.test import Client

    client = Client()
    client.force_login(ctx.agent.user)
    pages = [
        ("ui.inbox", "UI inbox (My open tickets)", "/", LIST_BUDGET),
        ("ui.inbox.open", "UI inbox (All open)", "/?view=open", LIST_BUDGET),
        ("ui.inbox.all", "UI inbox (All tickets)", "/?view=all", LIST_BUDGET),
        (
            "ui.ticket",
            "UI ticket page (50 comments)",
            f"/tickets/{ctx.fifty.number}",
            TICKET_BUDGET,
        ),
    ]
    figures = []
    for key, label, url, budget in pages:
        result, queries = timed_requests(lambda url=url: client.get(url), repeat=repeat)
        figure = Figure(key, label, "ms", result, queries)
        # The issue's list budget is the API's; shown for the inbox as the bar to meet.
        figures.append(apply_budget(figure, budget))
    return figures


# --- The floor: one hand-written query ---------------------------------------------------

FLOOR_SQL = """
SELECT t.id, t.number, t.subject, t.status, t.priority, t.channel, t.created_at,
       t.updated_at, t.first_response_at, t.resolved_at, t.closed_at, t.sla_due_at,
       c.id, c.name, c.email, co.id, co.name, a.id, u.name, u.email, tm.id, tm.name,
       cat.id, cat.name, m.number,
       (SELECT {tags} FROM tickets_tickettag tt JOIN tickets_tag tg ON tg.id = tt.tag_id
        WHERE tt.ticket_id = t.id) AS tags
FROM tickets_ticket t
JOIN workspaces_customer c ON c.id = t.customer_id
LEFT JOIN workspaces_company co ON co.id = t.company_id
LEFT JOIN workspaces_agent a ON a.id = t.assignee_id
LEFT JOIN workspaces_user u ON u.id = a.user_id
LEFT JOIN workspaces_team tm ON tm.id = t.team_id
LEFT JOIN tickets_category cat ON cat.id = t.category_id
LEFT JOIN tickets_ticket m ON m.id = t.merged_into_id
WHERE t.workspace_id = %s AND t.deleted_at IS NULL {where}
ORDER BY t.updated_at DESC, t.id DESC
LIMIT 26
"""


class Floors:
    """Each list page's rows through one SQL query on a plain driver connection."""

    def __init__(self, workspace_id: int) -> None:
        from django.conf import settings

        self.ws = workspace_id
        db = settings.DATABASES["default"]
        self.postgres = settings.IS_POSTGRES
        if self.postgres:
            import psycopg

            self.conn = psycopg.connect(
                host=db.get("HOST") or "127.0.0.1",
                port=db.get("PORT") or 5432,
                user=db.get("USER") or "postgres",
                password=db.get("PASSWORD") or None,
                dbname=db["NAME"],
                autocommit=True,
            )
        else:
            import sqlite3

            self.conn = sqlite3.connect(str(db["NAME"]))

    def sql(self, key: str, params: dict[str, str], position: Any) -> tuple[str, list[Any]]:
        where, args = "", [self.ws]
        if key == "api.list.deep":
            where = "AND (t.updated_at < %s OR (t.updated_at = %s AND t.id < %s))"
            args += [position[0], position[0], position[1]]
        elif "status" in params:
            where, args = "AND t.status = %s", [*args, params["status"]]
        elif "assignee" in params:
            where, args = "AND t.assignee_id = %s", [*args, int(params["assignee"])]
        elif "team" in params:
            where, args = "AND t.team_id = %s", [*args, int(params["team"])]
        elif "customer" in params:
            where, args = "AND t.customer_id = %s", [*args, int(params["customer"])]
        elif "tag" in params:
            where = (
                "AND EXISTS (SELECT 1 FROM tickets_tickettag x JOIN tickets_tag y "
                "ON y.id = x.tag_id WHERE x.ticket_id = t.id AND lower(y.name) = %s)"
            )
            args += [params["tag"].lower()]
        elif "q" in params:
            words = params["q"].lower().split()
            if self.postgres:
                where = "AND t.search_document @@ to_tsquery('simple'::regconfig, %s)"
                args += [" & ".join(f"{word}:*" for word in words)]
            else:
                for word in words:
                    where += (
                        " AND (t.subject LIKE %s OR t.id IN (SELECT ticket_id FROM "
                        "tickets_comment WHERE workspace_id = %s AND body_text LIKE %s))"
                    )
                    args += [f"%{word}%", self.ws, f"%{word}%"]
        tags = "array_agg(tg.name ORDER BY tg.name)" if self.postgres else "group_concat(tg.name)"
        sql = FLOOR_SQL.format(tags=tags, where=where)
        if not self.postgres:
            sql = sql.replace("%s", "?")
            args = [a.isoformat(" ") if isinstance(a, datetime) else a for a in args]
        return sql, args

    def measure(self, key: str, params: dict[str, str], position: Any, repeat: int) -> float:
        sql, args = self.sql(key, params, position)
        times = []
        warmup = 1 if key.startswith("api.list.search") else 3
        for n in range(repeat + warmup):
            started = time.perf_counter()
            cursor = self.conn.execute(sql, args)
            rows = cursor.fetchall()
            elapsed = time.perf_counter() - started
            if n >= warmup:
                times.append(elapsed * 1000)
        if not rows:
            raise RuntimeError(f"the floor query of {key} found no rows")
        return stats(times)["median"]

    def close(self) -> None:
        self.conn.close()


# --- HTTP against the real server ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_env() -> dict[str, str]:
    from django.conf import settings

    env = {
        **os.environ,
        **NO_LIMITS,
        # Production-like: DEBUG off (no query log, no debug pages), plain HTTP on loopback.
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "SECRET_KEY": settings.SECRET_KEY,
        "JWT_SECRET": settings.JWT_SECRET,
        "DATABASE_ENCRYPTION_KEY": settings.DATABASE_ENCRYPTION_KEY,
        "LOG_LEVEL": "warning",
    }
    if settings.REDIS_MODE == "embedded":
        env["REDIS_URL"] = settings.REDIS_URL
    return env


def http_figures(ctx: Context, workers: int, duration: float, clients: int) -> list[Figure]:
    port = free_port()
    log_path = BASE_DIR / "var" / "bench-server.log"  # var/ is not committed
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "enque.asgi:application", "--host", "127.0.0.1",
                "--port", str(port), "--workers", str(workers), "--lifespan", "off",
                "--log-level", "warning", "--no-access-log", "--backlog", "2048",
            ],
            cwd=BASE_DIR, env=server_env(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1):  # noqa: S310 - loopback
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("uvicorn did not start in 90 s") from None
                time.sleep(0.2)
        detail = f"/v1/tickets/{ctx.fifty.number}"
        reply = f"/v1/tickets/{ctx.target.number}/reply"
        runs = [
            ("http.list", "HTTP GET /v1/tickets", "GET /v1/tickets=1", HTTP_LIST_BUDGET),
            ("http.detail", "HTTP GET /v1/tickets/:n", f"GET {detail}=1", None),
            (
                "http.mix",
                "HTTP mix: 60% list, 25% detail, 15% reply",
                f"GET /v1/tickets=12,GET {detail}=5,POST {reply}=3",
                None,
            ),
        ]
        load(base, ctx.token, runs[2][2], clients, 3.0)  # warm every worker up
        figures = []
        for key, label, mix, budget in runs:
            result = load(base, ctx.token, mix, clients, duration)
            figure = Figure(
                key,
                f"{label} ({clients} clients, {workers} workers)",
                "req/s",
                {"median": result["requests_per_s"]},
                extra=result,
            )
            errors = sum(result["errors"].values())
            if errors:
                figure.note = f"{errors} errors: {result['errors']}"
            figures.append(apply_budget(figure, budget))
        return figures
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def load(base: str, token: str, mix: str, clients: int, duration: float) -> dict[str, Any]:
    completed = subprocess.run(
        [
            sys.executable, str(BENCH_DIR / "http_load.py"), "--url", base, "--token", token,
            "--mix", mix, "--clients", str(clients), "--duration", str(duration),
        ],
        capture_output=True, text=True, check=True, timeout=duration + 120,
    )  # fmt: skip
    return json.loads(completed.stdout.strip().splitlines()[-1])


# --- The other benchmarks, each in a process of its own ---------------------------------


def child(code: str, timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter (each of these benchmarks configures Django its own
    way) and return the dict it prints after RESULT_PREFIX."""
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    tail = (completed.stderr or completed.stdout)[-1500:]
    raise RuntimeError(f"exit {completed.returncode}: {tail}")


def failure(exc: Exception) -> str:
    if isinstance(exc, subprocess.TimeoutExpired):
        return f"failed: timed out after {exc.timeout:.0f} s"
    return f"failed: {exc}"[:300]


def entry_point(module: str, function: str) -> inspect.Signature | None:
    """The signature of bench/<module>.py's ``function``, or None when it is not there."""
    path = BENCH_DIR / f"{module}.py"
    if not path.exists():
        return None
    import ast

    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            names = [a.arg for a in (*node.args.args, *node.args.kwonlyargs)]
            return inspect.Signature(
                [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in names]
            )
    return None


def call_code(module: str, function: str, kwargs: dict[str, Any]) -> str:
    return (
        "import json, sys; sys.path.insert(0, 'bench'); sys.path.insert(0, '.'); "
        f"import {module}; result = {module}.{function}(**{kwargs!r}); "
        f"print({RESULT_PREFIX!r} + json.dumps(result, default=str))"
    )


def ingest_figures(vendor: str) -> list[Figure]:
    signature = entry_point("ingest", "run")
    if signature is None or "workers" not in signature.parameters:
        return [
            Figure(
                "ingest",
                "Mail ingestion",
                "msg/s",
                note="skipped: bench/ingest.py has no run(messages, workers) yet",
            )
        ]
    figures = []
    for workers in (1, 4):
        label = (
            "Mail ingestion, one process"
            if workers == 1
            else f"Mail ingestion, {workers} worker processes"
        )
        try:
            result = child(call_code("ingest", "run", {"messages": 2000, "workers": workers}), 1800)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            figures.append(Figure(f"ingest.{workers}", label, "msg/s", note=failure(exc)))
            continue
        rate = result.get("msg_per_s") or result.get("messages_per_s") or result.get("rate")
        figure = Figure(
            f"ingest.{workers}",
            label,
            "msg/s",
            {"median": float(rate)} if rate else {},
            extra=result,
        )
        rss = result.get("peak_rss_mib") or result.get("peak_rss_mb")
        if rss:
            figure.note = f"peak RSS {rss:.0f} MiB"
        figures.append(
            apply_budget(figure, INGEST_BUDGET if workers == 1 and vendor == "postgresql" else None)
        )
    return figures


def fanout_figures(sockets: int) -> list[Figure]:
    try:
        result = child(
            call_code(
                "realtime_fanout",
                "run_benchmark",
                {"sockets": sockets, "events": FANOUT_EVENTS, "rate": FANOUT_RATE},
            ),
            900,
        )
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return [Figure("fanout", "Websocket fan-out", "ms", note=failure(exc))]
    latency = result["latency_ms"]
    figure = Figure(
        "fanout",
        f"Websocket fan-out: {sockets} sockets, {FANOUT_RATE:g} events/s, delivery latency",
        "ms",
        {k: latency[k] for k in ("median", "p90", "p99", "min", "max")}
        | {"runs": result["delivered"]},
        extra=result,
        note=f"{result['events_per_s']:.1f} events/s fully fanned out, {result['lost']} lost",
    )
    return [apply_budget(figure, FANOUT_BUDGET)]


def rules_figures() -> list[Figure]:
    try:
        result = child(call_code("automation_rules", "run_benchmark", {"tickets": 1000}), 1800)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return [Figure("rules", "Rule evaluation", "tickets/s", note=failure(exc))]
    return [
        Figure(
            "rules.eval",
            f"Rule evaluation: {result['active_rules']} active rules, conditions only",
            "tickets/s",
            {"median": result["evaluation_tickets_per_s"]},
            extra=result,
        ),
        Figure(
            "rules.e2e",
            "Ticket creation through the rules (end to end)",
            "tickets/s",
            {"median": result["end_to_end_tickets_per_s"]},
            extra=result,
            note=f"{result['firings_per_ticket']:.1f} firings per ticket",
        ),
    ]


def analytics_figures(size: int) -> list[Figure]:
    signature = entry_point("analytics", "run")
    if signature is None:
        return [
            Figure(
                "analytics",
                "Analytics overview",
                "ms",
                note="skipped: bench/analytics.py has no run() yet",
            )
        ]
    kwargs = {"size": size} if "size" in signature.parameters else {}
    try:
        result = child(call_code("analytics", "run", kwargs), 1800)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return [Figure("analytics", "Analytics overview", "ms", note=failure(exc))]
    figures = []
    for key, value in result.items():
        if isinstance(value, dict) and "median" in value:
            figure = Figure(f"analytics.{key}", f"Analytics: {key}", "ms", dict(value))
            figure.queries = value.get("queries")
            figures.append(figure)
    if not figures:
        figures.append(
            Figure(
                "analytics", "Analytics overview", "", extra=result, note=json.dumps(result)[:200]
            )
        )
    return figures


# --- Output ---------------------------------------------------------------------------------


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "ms":
        return f"{value:.1f}" if value < 100 else f"{value:.0f}"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def table(figures: list[Figure]) -> str:
    header = (
        "figure",
        "unit",
        "median",
        "p90",
        "p99",
        "min",
        "max",
        "queries",
        "xfloor",
        "budget",
        "",
    )
    rows = [header]
    for f in figures:
        s = f.stats
        if f.unit == "req/s" and f.extra.get("latency_ms"):
            lat = f.extra["latency_ms"]
            rows.append(
                (
                    f.label, "req/s", fmt(s.get("median"), "req/s"),
                    f"lat p50 {lat['median']:.0f} ms", f"p90 {lat['p90']:.0f}",
                    f"p99 {lat['p99']:.0f}",
                    f"max {lat['max']:.0f}", "", "", f.budget, f.verdict,
                )
            )  # fmt: skip
        elif s:
            rows.append(
                (
                    f.label, f.unit, fmt(s.get("median"), f.unit), fmt(s.get("p90"), f.unit),
                    fmt(s.get("p99"), f.unit), fmt(s.get("min"), f.unit), fmt(s.get("max"), f.unit),
                    "" if f.queries is None else str(f.queries),
                    "" if f.ratio is None else f"{f.ratio:.1f}x", f.budget, f.verdict,
                )
            )  # fmt: skip
        else:
            rows.append((f.label, "", "", "", "", "", "", "", "", f.budget, ""))
        if f.note:
            rows.append(("  " + f.note, *([""] * (len(header) - 1))))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    widths[0] = min(widths[0], 70)
    lines = []
    for i, row in enumerate(rows):
        cells = [str(row[0])[:70].ljust(widths[0])] + [
            str(c).rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def markdown(figures: list[Figure]) -> str:
    lines = [
        "| figure | median | p90 | p99 | min | max | queries | x floor | CPU | budget | |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for f in figures:
        s = f.stats
        if f.unit == "req/s" and f.extra.get("latency_ms"):
            lat = f.extra["latency_ms"]
            cells = [
                f"{s['median']:.0f} req/s",
                f"latency p50 {lat['median']:.0f} ms",
                f"p90 {lat['p90']:.0f} ms",
                f"p99 {lat['p99']:.0f} ms",
                f"max {lat['max']:.0f} ms",
                "",
                "",
            ]
        elif s:
            unit = "" if f.unit == "ms" else f" {f.unit}"
            cells = [
                ""
                if s.get(k) is None
                else fmt(s.get(k), f.unit) + (" ms" if f.unit == "ms" else unit)
                for k in ("median", "p90", "p99", "min", "max")
            ]
            cells += [
                "" if f.queries is None else str(f.queries),
                "" if f.ratio is None else f"{f.ratio:.1f}x",
            ]
        else:
            cells = [f.note or "—", "", "", "", "", "", ""]
        # The request thread's CPU time: on a loaded machine the wall time waits for a core.
        cpu = s.get("cpu_median")
        cells.append("" if cpu is None else f"{cpu:.1f} ms")
        label = f.label + (f" ({f.note})" if f.note and s else "")
        lines.append("| " + " | ".join([label, *cells, f.budget, f.verdict]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=10_000, help="tickets in the dataset")
    parser.add_argument("--name", default="", help="results file name (default: <vendor>-<size>)")
    parser.add_argument(
        "--only", default="", help=f"comma-separated sections of {', '.join(SECTIONS)}"
    )
    parser.add_argument("--repeat", type=int, default=30, help="runs per in-process figure")
    parser.add_argument("--search-repeat", type=int, default=30, help="runs of the q= figure")
    parser.add_argument("--http-workers", type=int, default=3, help="uvicorn worker processes")
    parser.add_argument("--http-duration", type=float, default=15.0, help="seconds per HTTP run")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument("--sockets", type=int, default=1000, help="websockets in the fan-out")
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")

    setup_django(args.size)
    from django.db import connection

    redis = EmbeddedRedis()
    started = time.monotonic()
    figures: list[Figure] = []
    try:
        ctx = prepare(args.size)
        vendor = connection.vendor
        print(f"\nbenchmark on {vendor}, workspace {ctx.workspace.slug}\n", flush=True)
        floors = Floors(ctx.workspace.pk) if "floor" in only else None
        try:
            if "api" in only:
                figures += api_figures(ctx, args.repeat, floors, args.search_repeat)
        finally:
            if floors is not None:
                floors.close()
        if "ui" in only:
            figures += ui_figures(ctx, args.repeat)
        if "http" in only:
            figures += http_figures(ctx, args.http_workers, args.http_duration, args.clients)
        if "ingest" in only:
            figures += ingest_figures(vendor)
        if "fanout" in only:
            figures += fanout_figures(args.sockets)
        if "rules" in only:
            figures += rules_figures()
        if "analytics" in only:
            figures += analytics_figures(args.size)
        counts = dataset_counts(ctx.workspace)
        result = {
            "name": args.name or f"{vendor}-{args.size}",
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "duration_s": round(time.monotonic() - started, 1),
            "machine": machine(),
            "versions": versions(),
            "dataset": {"size": args.size, "database": vendor, **counts},
            "sections": only,
            # Load average at the end: other work on the machine inflates wall times.
            "load_average": os.getloadavg(),
            "figures": [asdict(f) for f in figures],
            "markdown": markdown(figures),
        }
    finally:
        redis.stop()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{result['name']}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(table(figures))
    m, v, d = result["machine"], result["versions"], result["dataset"]
    print(
        f"\nmachine: {m['cpus']} CPUs ({m['cpu_model']}), {m['ram_gib']} GiB, {m['os']}\n"
        f"versions: Python {v['python']}, Django {v['django']}, {v['database']}\n"
        f"dataset: {d['tickets']:,} tickets, {d['comments']:,} comments, "
        f"{d['customers']:,} customers ({vendor})\nwritten to {path.relative_to(BASE_DIR)}"
    )


if __name__ == "__main__":
    main()
