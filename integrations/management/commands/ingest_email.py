"""``manage.py ingest_email --mailbox support@acme.test FILE.eml…``: feed files to the pipeline.

Each file goes through ``integrations.inbound.ingest_raw_email`` exactly as a message
fetched from the mailbox would, and one line per file says what became of it. A file that
cannot be read, or a message that fails, is reported and the next one goes on; the exit
status is non-zero when any failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from integrations.inbound import ingest_raw_email
from integrations.models import InboundEmail, InboundEmailStatus, MailboxConnection


def describe(inbound: InboundEmail) -> str:
    """One line on a message's outcome (shared with ``reprocess_email``)."""
    head = f"inbound #{inbound.pk} {inbound.status}"
    if getattr(inbound, "was_duplicate", False):
        head += " (already received)"
    if inbound.status == InboundEmailStatus.PROCESSED and inbound.ticket_id:
        number = inbound.ticket.number if inbound.ticket else "?"
        return f"{head}: {inbound.reason} → ticket #{number}"
    if inbound.status == InboundEmailStatus.FAILED:
        first_line = (inbound.error or "").splitlines()[0] if inbound.error else ""
        return f"{head}: {inbound.reason} — {first_line}"
    return f"{head}: {inbound.reason}" if inbound.reason else head


class Command(BaseCommand):
    help = "Ingest .eml files into a mailbox through the inbound pipeline."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--mailbox", required=True, help="The mailbox's email address.")
        parser.add_argument(
            "--workspace", help="The workspace's slug, when several have this mailbox address."
        )
        parser.add_argument("files", nargs="+", metavar="FILE.eml")

    def handle(self, *args: Any, **options: Any) -> None:
        mailboxes = MailboxConnection.objects.filter(
            email_address__iexact=options["mailbox"].strip()
        ).select_related("workspace")
        if options["workspace"]:
            mailboxes = mailboxes.filter(workspace__slug=options["workspace"])
        found = list(mailboxes[:2])
        if not found:
            raise CommandError(f"No mailbox {options['mailbox']!r}.")
        if len(found) > 1:
            raise CommandError(
                f"Several workspaces have a mailbox {options['mailbox']!r}: name one with "
                "--workspace <slug>."
            )
        mailbox = found[0]
        failures = 0
        for name in options["files"]:
            try:
                raw = Path(name).read_bytes()
            except OSError as exc:
                failures += 1
                self.stdout.write(f"{name}: unreadable — {exc.strerror or exc}")
                continue
            inbound = ingest_raw_email(mailbox=mailbox, raw=raw)
            failures += inbound.status == InboundEmailStatus.FAILED
            self.stdout.write(f"{name}: {describe(inbound)}")
        if failures:
            raise CommandError(f"{failures} of {len(options['files'])} messages failed.")
