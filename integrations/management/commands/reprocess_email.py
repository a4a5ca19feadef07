"""``manage.py reprocess_email --id N`` / ``--failed``: replay stored messages that failed.

The raw message is read back from storage and processed again; a message that is already
processed or ignored is left as it is, so running the command twice changes nothing.
``--failed`` also takes messages a crashed worker left in "processing" for longer than
``STALE_PROCESSING_AFTER``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q
from django.utils import timezone

from integrations.inbound import reprocess_inbound_email
from integrations.inbound.pipeline import STALE_PROCESSING_AFTER
from integrations.management.commands.ingest_email import describe
from integrations.models import InboundEmail, InboundEmailStatus


class Command(BaseCommand):
    help = "Replay failed inbound messages through the pipeline."

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--id", type=int, action="append", dest="ids", help="InboundEmail id.")
        which.add_argument("--failed", action="store_true", help="Every failed message.")
        parser.add_argument("--workspace", help="Only this workspace (slug), with --failed.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["ids"]:
            rows = InboundEmail.objects.filter(pk__in=options["ids"])
            missing = set(options["ids"]) - set(rows.values_list("pk", flat=True))
            if missing:
                raise CommandError(f"No inbound email {', '.join(map(str, sorted(missing)))}.")
        else:
            cutoff = timezone.now() - STALE_PROCESSING_AFTER
            rows = InboundEmail.objects.filter(
                Q(status=InboundEmailStatus.FAILED)
                | Q(status=InboundEmailStatus.PROCESSING, updated_at__lt=cutoff)
            )
            if options["workspace"]:
                rows = rows.filter(workspace__slug=options["workspace"])
        ids = list(rows.order_by("pk").values_list("pk", flat=True))
        still_failed = 0
        for pk in ids:
            inbound = InboundEmail.objects.get(pk=pk)
            inbound = reprocess_inbound_email(inbound)
            still_failed += inbound.status == InboundEmailStatus.FAILED
            self.stdout.write(describe(inbound))
        if not ids:
            self.stdout.write("Nothing to reprocess.")
        if still_failed:
            raise CommandError(f"{still_failed} of {len(ids)} messages failed again.")
