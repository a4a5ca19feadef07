"""Inbound mail benchmark: 2,000 generated messages through ``ingest_raw_email``, one process.

    .venv/bin/python bench/ingest.py                      # SQLite (a scratch file)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enque .venv/bin/python bench/ingest.py
    .venv/bin/python bench/ingest.py --messages 500

What runs: the whole pipeline as a mailbox sync would run it — raw bytes stored (files
under a temporary MEDIA_ROOT), parsed, classified, threaded, customers upserted, tickets
and comments created through ``tickets.services`` with their attachments, mappings and
history. The database is a scratch one, created and migrated first and dropped at the end
(SQLite: a file in a temporary directory; PostgreSQL: ``enque_bench_ingest`` on the
server of DATABASE_URL), migrated by a child process so that the peak RSS reported is the
ingestion's. ``REDIS_URL=memory``: the on-commit listeners run in-process.

The mix, generated before the clock starts: ~55% new tickets (a third of them HTML with
an inline image, one in six with a 20 KB attachment, some in Latin-1 or Shift_JIS), ~30%
replies threading through In-Reply-To with quoted history, ~5% out-of-office replies,
~5% newsletters (ignored), ~5% bounces. Prints messages/s, the outcome counts, and peak
RSS (``resource.getrusage``), with the RSS before ingesting for comparison.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from email import policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
SCRATCH_DB = "enque_bench_ingest"
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00"
    b"\x00\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe"
    b"\x92\xef\x00\x00\x00\x00IEND\xaeB`\x82"
)


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(count: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    messages: list[bytes] = []
    opened: list[tuple[str, str, str]] = []  # (message id, sender, subject) of new tickets
    words = [
        "printer",
        "invoice",
        "login",
        "password",
        "error",
        "page",
        "account",
        "order",
        "refund",
        "screen",
    ]
    for n in range(count):
        msg = EmailMessage(policy=policy.SMTP)
        msg["To"] = "support@bench.test"
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
                f"{sender} wrote:\n> " + "\n> ".join(rng.choices(words, k=30)) + "\n"
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
            messages.append(bounce(n, sender, parent_id))
            continue
        else:
            customer = n % 400
            sender = f"Customer {customer} <customer{customer}@company{customer % 40}.test>"
            subject = f"{rng.choice(words).title()} problem {n}"
            msg["From"] = sender
            msg["Subject"] = subject
            body = " ".join(rng.choices(words, k=80))
            kind = rng.random()
            if kind < 0.1:
                del msg["Subject"]
                msg["Subject"] = f"Problème de {rng.choice(words)} {n}"
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
        messages.append(msg.as_bytes())
    return messages


def bounce(n: int, sender: str, parent_id: str) -> bytes:
    address = sender.split("<", 1)[1].rstrip(">")
    return (
        f"From: MAILER-DAEMON@mx.bench.test\r\nTo: support@bench.test\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <bounce{n}@mx.bench.test>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; "
        'boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n'
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        f"Final-Recipient: rfc822; {address}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <reply.{n}@enque.local>\r\nIn-Reply-To: <{parent_id}>\r\n\r\n--b--\r\n"
    ).encode()


def current_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def scratch_postgres(url: str) -> tuple[str, str]:
    """A fresh database beside the one DATABASE_URL names: (its URL, the admin URL)."""
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB}")
        conn.execute(f"CREATE DATABASE {SCRATCH_DB}")
    return urlunsplit(parts._replace(path=f"/{SCRATCH_DB}")), admin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()

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
        env["DATABASE_URL"], admin_url = scratch_postgres(os.environ["DATABASE_URL"])
    # Migrated by a child process, so the peak RSS below is the ingestion's, not migrate's.
    started = time.monotonic()
    subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "migrate", "--verbosity", "0"],
        env=env,
        check=True,
    )
    print(f"scratch database migrated in {time.monotonic() - started:.1f} s")
    os.environ.update(env)
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    settings.DEBUG = False  # no query log growing in memory
    print(f"database: {connection.vendor}")
    try:
        run(args.messages)
    finally:
        connection.close()
        shutil.rmtree(scratch, ignore_errors=True)
        if admin_url:
            import psycopg

            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB}")


def run(count: int) -> None:
    from integrations.inbound import ingest_raw_email
    from integrations.models import InboundEmail, MailboxConnection
    from tickets.models import Comment, Ticket, TicketAttachment
    from workspaces.models import User
    from workspaces.services import workspace_create

    # No password: Argon2 hashing alone would take 100 MiB and dominate the peak RSS.
    owner = User.objects.create_user("owner@bench.test", None)
    workspace = workspace_create(name="Bench", owner=owner)
    mailbox = MailboxConnection.objects.create(
        workspace=workspace, provider="imap", email_address="support@bench.test"
    )
    started = time.monotonic()
    messages = generate(count)
    size = sum(len(m) for m in messages)
    print(
        f"generated {len(messages)} messages ({size / 1024 / 1024:.1f} MiB) in "
        f"{time.monotonic() - started:.1f} s"
    )
    rss_before = current_rss_mib()
    outcomes: Counter[str] = Counter()
    started = time.monotonic()
    for raw in messages:
        inbound = ingest_raw_email(mailbox=mailbox, raw=raw)
        outcomes[f"{inbound.status}:{inbound.reason.split(':')[0]}"] += 1
    elapsed = time.monotonic() - started
    print(
        f"ingested {len(messages)} messages in {elapsed:.1f} s: {len(messages) / elapsed:.0f} msg/s"
    )
    print(
        f"peak RSS: {peak_rss_mib():.0f} MiB (RSS {rss_before:.0f} MiB before ingesting, "
        f"{current_rss_mib():.0f} MiB after)"
    )
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    print(
        f"rows: {InboundEmail.objects.count()} inbound, {Ticket.objects.count()} tickets, "
        f"{Comment.objects.count()} comments, {TicketAttachment.objects.count()} attachments"
    )


if __name__ == "__main__":
    main()
