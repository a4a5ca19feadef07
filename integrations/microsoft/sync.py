"""Incremental sync of a Microsoft 365 mailbox with Graph delta queries.

Per folder (``EmailSyncConfig.folder``, the inbox by default) the delta query lists message
ids only; each new message's raw MIME (``/messages/{id}/$value``) goes to the inbound
pipeline with its immutable id as provider id. The new delta link is saved in the same
transaction as the last page's messages, so a crash before it means the page is fetched
again — and the pipeline's dedupe makes that harmless. A 410 (Graph forgot the sync state)
starts a full resync, which skips every message already stored.

Locking, the mailbox's sync status and "reconnect needed" marking belong to the caller,
``integrations.sync.sync_mailbox``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import quote

from django.db import transaction
from django.utils import timezone

from integrations.errors import PermanentMailError
from integrations.inbound.pipeline import ingest_many
from integrations.microsoft.graph import GraphClient, GraphNotFound, SyncStateGone
from integrations.models import EmailSyncConfig, InboundEmail, MailboxConnection

logger = logging.getLogger(__name__)

# Ids per delta page: each id costs one $value download, so a page is a unit of work
# small enough to commit often.
PAGE_SIZE = 50
# A full enumeration of a large mailbox is many pages; a loop that never reaches a delta
# link (a misbehaving server) must still end.
MAX_PAGES = 10_000


def sync_microsoft_mailbox(
    mailbox: MailboxConnection, *, heartbeat: Callable[[], None] | None = None
) -> int:
    """Ingest the mailbox's new messages; return how many were new to us.

    ``heartbeat``, when given, is called after every committed page (it extends the
    caller's sync lock during a long first sync).
    """
    config, _ = EmailSyncConfig.objects.get_or_create(
        mailbox=mailbox, defaults={"workspace_id": mailbox.workspace_id}
    )
    client = GraphClient(mailbox)
    try:
        return _sync(client, config, heartbeat)
    except SyncStateGone:
        if not config.delta_link:
            raise
        logger.warning("graph delta state expired; full resync", extra={"mailbox": mailbox.pk})
        config.delta_link = ""
        config.save(update_fields=["delta_link", "updated_at"])
        return _sync(client, config, heartbeat)


def _initial_url(client: GraphClient, folder: str) -> str:
    return client.url(f"/mailFolders/{quote(folder or 'inbox', safe='')}/messages/delta?$select=id")


def _sync(
    client: GraphClient, config: EmailSyncConfig, heartbeat: Callable[[], None] | None
) -> int:
    mailbox = client.mailbox
    full = not config.delta_link
    url = config.delta_link or _initial_url(client, config.folder)
    ingested = 0
    for _ in range(MAX_PAGES):
        page = client.get(url, headers={"Prefer": f"odata.maxpagesize={PAGE_SIZE}"}).json()
        next_link = page.get("@odata.nextLink")
        delta_link = page.get("@odata.deltaLink")
        # Checked before any work: a link to another host means something is wrong.
        if next_link:
            client.follow(next_link)
        elif delta_link:
            client.follow(delta_link)
        else:
            raise PermanentMailError("Microsoft Graph's delta page had no next or delta link.")

        ids = [
            str(item["id"])
            for item in page.get("value", [])
            if isinstance(item, dict) and item.get("id") and "@removed" not in item
        ]
        known = set(
            InboundEmail.objects.filter(mailbox=mailbox, provider_message_id__in=ids).values_list(
                "provider_message_id", flat=True
            )
        )
        # Downloads happen outside the transaction: no database transaction is held open
        # across network calls.
        fetched: list[tuple[str, bytes]] = []
        for message_id in dict.fromkeys(ids):
            if message_id in known:
                continue
            raw = _fetch_mime(client, message_id)
            if raw is not None:
                fetched.append((message_id, raw))

        with transaction.atomic():
            # The page at once: its raw rows in one go, then its messages processed in one
            # transaction (a savepoint each) with the lookups they share read once.
            rows = ingest_many(mailbox, [(raw, message_id) for message_id, raw in fetched])
            ingested += sum(not row.was_duplicate for row in rows)
            if not next_link:
                config.delta_link = delta_link
                fields = ["delta_link", "updated_at"]
                if full:
                    config.last_full_sync_at = timezone.now()
                    fields.append("last_full_sync_at")
                config.save(update_fields=fields)
        if heartbeat is not None:
            heartbeat()
        if not next_link:
            return ingested
        url = next_link
    raise PermanentMailError("Microsoft Graph's delta query did not end.")


def _fetch_mime(client: GraphClient, message_id: str) -> bytes | None:
    try:
        response = client.get(client.url(f"{client.message_path(message_id)}/$value"))
    except GraphNotFound:
        # Deleted between the delta page and now: nothing to ingest.
        return None
    return response.content
