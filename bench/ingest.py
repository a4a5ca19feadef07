"""Inbound mail benchmark: 2,000 generated messages through the inbound pipeline.

    .venv/bin/python bench/ingest.py                      # SQLite (a scratch file)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enque .venv/bin/python bench/ingest.py
    .venv/bin/python bench/ingest.py --messages 500 --batch 1     # ingest_raw_email, one by one
    .venv/bin/python bench/ingest.py --workers 4                  # four processes, a share each
    .venv/bin/python bench/ingest.py --json                       # the figures as JSON

What runs: the whole pipeline as a mailbox sync would run it — raw bytes stored (files
under a temporary MEDIA_ROOT), parsed, classified, threaded, customers upserted, tickets
and comments created through ``tickets.services`` with their attachments, mappings and
history, and the on-commit listeners (SLA, rules, notifications, realtime publish on the
in-process channel layer: ``REDIS_URL=memory``). Messages go in pages of ``--batch``
(default 50, a Graph delta page) through ``ingest_many``; ``--batch 1`` calls
``ingest_raw_email`` once per message, as a source that has one message at a time does.

The database is a scratch one, created and migrated first and dropped at the end (SQLite:
a file in a temporary directory; PostgreSQL: ``enque_bench_ingest_<pid>`` on the server of
DATABASE_URL). Migration, setup and the ingestion itself each run in child processes, so
the peak RSS reported is the ingestion's alone and the caller's process never configures
Django. ``--workers N`` runs N ingesting processes at once, each taking every N-th message
(there is no Celery ingestion task: sources call the pipeline from their sync task, so
workers are plain processes here, and a reply may reach its ticket before it exists and
open one of its own instead).

The mix, generated lazily (memory does not grow with the count), seeded: ~55% new tickets
(a third of them HTML with an inline image, one in six with a 20 KB attachment, some in
Latin-1 or Shift_JIS), ~30% replies threading through In-Reply-To with quoted history,
~5% out-of-office replies, ~5% newsletters (ignored), ~5% bounces. Reported: messages/s
(wall clock of the ingestion, generation included, setup excluded), SQL statements per
message (commit-time listeners included), peak RSS, and RSS after 500, 1,000, 2,000…
messages, which stays flat when nothing accumulates.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
SCRATCH_DB = "enque_bench_ingest"
RESULT_PREFIX = "INGEST_RESULT "
MAILBOX = "support@bench.test"
RSS_EVERY = 500
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00"
    b"\x00\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe"
    b"\x92\xef\x00\x00\x00\x00IEND\xaeB`\x82"
)
WORDS = ["printer", "invoice", "login", "password", "error", "page", "account", "order"]
WORDS += ["refund", "screen"]
# Replies pick their parent among the most recent new tickets: bounded, so the generator's
# memory stays flat however many messages it makes.
RECENT_TICKETS = 500


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def generate(count: int, seed: int = 7) -> Iterator[bytes]:
    """The benchmark's messages, one at a time, the same every run."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    opened: list[tuple[str, str, str]] = []  # (message id, sender, subject) of new tickets
    for n in range(count):
        msg = EmailMessage(policy=policy.SMTP)
        msg["To"] = MAILBOX
        msg["Date"] = "Mon, 03 Jun 2024 10:00:00 +0000"
        message_id = f"bench{n}@mail.example.test"
        msg["Message-ID"] = f"<{message_id}>"
        roll = rng.random()
        if roll < 0.30 and opened:
            parent_id, sender, subject = rng.choice(opened)
            msg["From"] = sender
            msg["Subject"] = f"Re: {subject}"
            msg["In-Reply-To"] = f"<{parent_id}>"
            msg["References"] = f"<{parent_id}>"
            msg.set_content(
                f"Thanks, still broken on my side ({n}).\n\nOn Mon, 3 Jun 2024 at 10:00, "
                f"{sender} wrote:\n> " + "\n> ".join(rng.choices(WORDS, k=30)) + "\n"
            )
        elif roll < 0.35 and opened:
            parent_id, sender, subject = rng.choice(opened)
            msg["From"] = sender
            msg["Subject"] = f"Automatic reply: {subject}"
            msg["In-Reply-To"] = f"<{parent_id}>"
            msg["Auto-Submitted"] = "auto-replied"
            msg.set_content("I am out of the office until Monday.\n")
        elif roll < 0.40:
            msg["From"] = f"News <news{n % 7}@newsletter.example.test>"
            msg["Subject"] = "This week's offers"
            msg["List-Unsubscribe"] = "<mailto:unsubscribe@newsletter.example.test>"
            msg.set_content("Offers!\n" * 50)
        elif roll < 0.45 and opened:
            parent_id, sender, _subject = rng.choice(opened)
            yield bounce(n, sender, parent_id)
            continue
        else:
            customer = n % 400
            sender = f"Customer {customer} <customer{customer}@company{customer % 40}.test>"
            subject = f"{rng.choice(WORDS).title()} problem {n}"
            msg["From"] = sender
            msg["Subject"] = subject
            body = " ".join(rng.choices(WORDS, k=80))
            kind = rng.random()
            if kind < 0.1:
                del msg["Subject"]
                msg["Subject"] = f"Problème de {rng.choice(WORDS)} {n}"
                msg.set_content(f"Bonjour, ça ne marche pas. {body}\n", charset="iso-8859-1")
            elif kind < 0.15:
                msg.set_content(f"プリンターが動きません。{body}\n", charset="shift_jis")
            elif kind < 0.45:
                msg.set_content(body + "\n")
                msg.add_alternative(
                    f"<p>{body}</p><p><img src='cid:logo{n}@bench'></p>", subtype="html"
                )
                msg.get_payload()[1].add_related(PNG, "image", "png", cid=f"<logo{n}@bench>")
            else:
                msg.set_content(body + "\n")
            if rng.random() < 0.17:
                msg.add_attachment(
                    rng.randbytes(20_000), maintype="application", subtype="pdf", filename="a.pdf"
                )
            opened.append((message_id, sender, subject))
            del opened[:-RECENT_TICKETS]
        yield msg.as_bytes()


def bounce(n: int, sender: str, parent_id: str) -> bytes:
    address = sender.split("<", 1)[1].rstrip(">")
    return (
        f"From: MAILER-DAEMON@mx.bench.test\r\nTo: {MAILBOX}\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <bounce{n}@mx.bench.test>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; "
        'boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n'
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        f"Final-Recipient: rfc822; {address}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <reply.{n}@enque.local>\r\nIn-Reply-To: <{parent_id}>\r\n\r\n--b--\r\n"
    ).encode()


# --- The parent: scratch database, children, figures ---------------------------------------


def _scratch_name() -> str:
    # Per run: two benchmark runs at once (the suite runner and a person) must not drop
    # each other's database.
    return f"{SCRATCH_DB}_{os.getpid()}"


def _scratch_postgres(url: str) -> tuple[str, str]:
    """A fresh database beside the one DATABASE_URL names: (its URL, the admin URL)."""
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {_scratch_name()} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {_scratch_name()}")
    return urlunsplit(parts._replace(path=f"/{_scratch_name()}")), admin


def _drop_postgres(admin_url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {_scratch_name()} WITH (FORCE)")


def _child(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), *args],
        env=env,
        cwd=BASE_DIR,
        stdout=subprocess.PIPE,
        text=True,
    )


def _result_of(process: subprocess.Popen) -> dict[str, Any]:
    out, _ = process.communicate()
    for line in reversed(out.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    raise RuntimeError(f"an ingest child exited {process.returncode} without its figures")


def run(messages: int = 2000, workers: int = 1, batch: int = 50) -> dict[str, Any]:
    """The benchmark as a function: the figures as a dict (see the module's docstring).

    Uses PostgreSQL when DATABASE_URL is set (a scratch database on that server), else a
    scratch SQLite file. ``workers`` processes ingest a share each, at the same time.
    """
    if messages < 1 or workers < 1 or batch < 1:
        raise ValueError("messages, workers and batch must be at least 1")
    scratch = Path(tempfile.mkdtemp(prefix="enque-bench-ingest-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "enque.settings",
        "ENQUE_VAR_DIR": str(scratch),
        "MEDIA_ROOT": str(scratch / "media"),
        "REDIS_URL": "memory",
        "LOG_LEVEL": "warning",
    }
    admin_url = None
    if os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"], admin_url = _scratch_postgres(os.environ["DATABASE_URL"])
    try:
        started = time.monotonic()
        subprocess.run(
            [sys.executable, str(BASE_DIR / "manage.py"), "migrate", "--verbosity", "0"],
            env=env,
            cwd=BASE_DIR,
            check=True,
        )
        migrated = time.monotonic() - started
        setup = _result_of(_child(["--child-setup"], env))
        started = time.monotonic()
        children = [
            _child(
                [
                    "--child-ingest",
                    f"--messages={messages}",
                    f"--workers={workers}",
                    f"--worker={worker}",
                    f"--batch={batch}",
                ],
                env,
            )
            for worker in range(workers)
        ]
        shares = [_result_of(process) for process in children]
        seconds = time.monotonic() - started
        totals = _result_of(_child(["--child-count"], env))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if admin_url:
            _drop_postgres(admin_url)
    ingested = sum(share["messages"] for share in shares)
    outcomes: Counter[str] = Counter()
    for share in shares:
        outcomes.update(share["outcomes"])
    # Timed inside each process from its first message to its last (interpreter start and
    # Django setup excluded); the slowest process sets the pace.
    ingest_seconds = max(share["seconds"] for share in shares)
    rate = ingested / ingest_seconds
    statements = sum(share["statements"] for share in shares)
    return {
        "database": setup["database"],
        "messages": ingested,
        "workers": workers,
        "workers_mode": "processes" if workers > 1 else "one process",
        "batch": batch,
        "api": "ingest_raw_email" if batch == 1 else "ingest_many",
        "seconds": round(ingest_seconds, 2),
        "generate_seconds": round(max(share["generate_seconds"] for share in shares), 2),
        # Time on the CPU, summed over the ingesting processes and their PostgreSQL
        # backends: unlike the wall clock, barely moved by other work on the machine.
        "cpu_seconds": round(sum(share["cpu_seconds"] for share in shares), 2),
        "db_cpu_seconds": round(sum(share["db_cpu_seconds"] for share in shares), 2),
        "sql_seconds": round(sum(share["sql_seconds"] for share in shares), 2),
        "wall_seconds": round(seconds, 2),
        "messages_per_second": round(rate, 1),
        "msg_per_s": round(rate, 1),
        "statements_per_message": round(statements / ingested, 2),
        "peak_rss_mib": round(max(share["peak_rss_mib"] for share in shares), 1),
        "rss_mib_before": shares[0]["rss_mib_before"],
        "rss_mib_at": shares[0]["rss_mib_at"],
        "outcomes": dict(sorted(outcomes.items())),
        "rows": totals,
        "migrate_seconds": round(migrated, 1),
    }


# --- The children ----------------------------------------------------------------------------


def _django() -> None:
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    from django.conf import settings

    settings.DEBUG = False  # no query log growing in memory


def _child_setup() -> dict[str, Any]:
    from django.db import connection

    from integrations.models import MailboxConnection
    from workspaces.models import User
    from workspaces.services import workspace_create

    # No password: Argon2 hashing alone would take 100 MiB.
    owner = User.objects.create_user("owner@bench.test", None)
    workspace = workspace_create(name="Bench", owner=owner)
    MailboxConnection.objects.create(workspace=workspace, provider="imap", email_address=MAILBOX)
    return {"database": connection.vendor}


def _child_count() -> dict[str, int]:
    from integrations.models import InboundEmail
    from tickets.models import Comment, Ticket, TicketAttachment

    return {
        "inbound": InboundEmail.objects.count(),
        "tickets": Ticket.objects.count(),
        "comments": Comment.objects.count(),
        "attachments": TicketAttachment.objects.count(),
    }


def _database_cpu_seconds(connection: Any) -> float:
    """CPU time used so far by this connection's PostgreSQL backend, when it runs on this
    machine (0 otherwise, and for SQLite, whose work is the process's own)."""
    if connection.vendor != "postgresql":
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime and stime, fields 14 and 15 of stat(5), in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _spool(messages: Iterator[bytes], path: Path) -> Path:
    """Write ``messages`` to ``path``, each behind its length (4 bytes, big-endian)."""
    with path.open("wb") as out:
        for raw in messages:
            out.write(len(raw).to_bytes(4, "big"))
            out.write(raw)
    return path


def _unspool(path: Path) -> Iterator[bytes]:
    with path.open("rb") as spooled:
        while head := spooled.read(4):
            yield spooled.read(int.from_bytes(head, "big"))
    path.unlink()


def _statement_kind(sql: str) -> str:
    """A statement reduced to its verb and first table, to count where statements go."""
    words = sql.replace('"', "").split()
    verb = words[0].upper() if words else ""
    table = ""
    for marker in ("FROM", "INTO", "UPDATE"):
        upper = [w.upper() for w in words]
        if marker in upper[:200]:
            index = upper.index(marker)
            if index + 1 < len(words):
                table = words[index + 1]
                break
    return f"{verb} {table}".strip()


def _child_ingest(messages: int, workers: int, worker: int, batch: int) -> dict[str, Any]:
    from django.db import connection

    from integrations.inbound import ingest_many, ingest_raw_email
    from integrations.models import MailboxConnection

    mailbox = MailboxConnection.objects.get(email_address=MAILBOX)
    statements = 0

    kinds: Counter[str] = Counter()
    profiling = bool(os.environ.get("INGEST_PROFILE"))

    sql_seconds = 0.0

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal statements, sql_seconds
        statements += 1
        if profiling:
            kinds[_statement_kind(sql)] += 1
        sent = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            sql_seconds += time.perf_counter() - sent

    # The share is generated before the clock starts and spooled to a file, then read back
    # one message at a time: the figure is the pipeline's, not the generator's (which is
    # slower than the pipeline itself: the email package builds every header), and memory
    # still does not grow with the count.
    generating = time.monotonic()
    spool = _spool(
        (raw for n, raw in enumerate(generate(messages)) if n % workers == worker),
        Path(os.environ.get("ENQUE_VAR_DIR") or tempfile.gettempdir()) / f"spool.{worker}",
    )
    generate_seconds = time.monotonic() - generating

    def share() -> Iterator[bytes]:
        yield from _unspool(spool)

    outcomes: Counter[str] = Counter()
    rss_at: dict[int, float] = {}
    done = 0
    rss_before = current_rss_mib()
    page: list[tuple[bytes, str]] = []

    def flush() -> None:
        nonlocal done
        if batch == 1:
            rows = [ingest_raw_email(mailbox=mailbox, raw=raw) for raw, _ in page]
        else:
            rows = ingest_many(mailbox, page)
        for row in rows:
            outcomes[f"{row.status}:{row.reason.split(':')[0]}"] += 1
            done += 1
            if done % RSS_EVERY == 0:
                rss_at[done] = round(current_rss_mib(), 1)
        page.clear()

    profiler = None
    if os.environ.get("INGEST_PROFILE"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    db_cpu_before = _database_cpu_seconds(connection)
    cpu_started = time.process_time()
    started = time.monotonic()
    with connection.execute_wrapper(count):
        for raw in share():
            page.append((raw, ""))
            if len(page) >= batch:
                flush()
        flush()
    seconds = time.monotonic() - started
    cpu_seconds = time.process_time() - cpu_started
    db_cpu_seconds = _database_cpu_seconds(connection) - db_cpu_before
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(f"{os.environ['INGEST_PROFILE']}.{worker}")
        Path(f"{os.environ['INGEST_PROFILE']}.{worker}.sql.json").write_text(
            json.dumps(dict(kinds.most_common()), indent=1)
        )
    return {
        "messages": done,
        "seconds": seconds,
        "generate_seconds": generate_seconds,
        "statements": statements,
        "sql_seconds": sql_seconds,
        "cpu_seconds": cpu_seconds,
        "db_cpu_seconds": db_cpu_seconds,
        "outcomes": dict(outcomes),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "rss_mib_before": round(rss_before, 1),
        "rss_mib_at": rss_at,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=1, help="ingesting processes")
    parser.add_argument("--batch", type=int, default=50, help="messages per ingest_many call")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)
    for name in ("--child-setup", "--child-ingest", "--child-count"):
        parser.add_argument(name, action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child_setup or args.child_ingest or args.child_count:
        _django()
        if args.child_setup:
            result = _child_setup()
        elif args.child_count:
            result = _child_count()
        else:
            result = _child_ingest(args.messages, args.workers, args.worker, args.batch)
        print(RESULT_PREFIX + json.dumps(result))
        return

    result = run(args.messages, args.workers, args.batch)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{result['database']}: {result['messages']} messages, {result['workers_mode']}"
        f"{f' ({args.workers})' if args.workers > 1 else ''}, {result['api']}"
        f"{f' in pages of {args.batch}' if args.batch > 1 else ''}"
    )
    print(
        f"ingested in {result['seconds']:.1f} s: {result['messages_per_second']:.0f} msg/s, "
        f"{result['statements_per_message']:.1f} SQL statements per message "
        f"(generating them took {result['generate_seconds']:.1f} s before that)"
    )
    print(
        f"CPU: {result['cpu_seconds']:.1f} s in the ingesting process"
        + (
            f", {result['db_cpu_seconds']:.1f} s in its PostgreSQL backend"
            if result["db_cpu_seconds"]
            else ""
        )
        + f"; {result['sql_seconds']:.1f} s waiting on SQL statements"
    )
    rss = ", ".join(f"{n}: {mib:.0f}" for n, mib in result["rss_mib_at"].items())
    after = f", then after messages {rss} (MiB)" if rss else ""
    print(
        f"peak RSS {result['peak_rss_mib']:.0f} MiB; RSS {result['rss_mib_before']:.0f} MiB "
        f"before ingesting{after}"
    )
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in result["outcomes"].items()))
    rows = result["rows"]
    print(
        f"rows: {rows['inbound']} inbound, {rows['tickets']} tickets, "
        f"{rows['comments']} comments, {rows['attachments']} attachments"
    )


if __name__ == "__main__":
    main()
