"""Which ticket a received message belongs to.

In order: the message's In-Reply-To and References against ``EmailTicketMapping`` in the
workspace (most recent id first; a merged ticket leads to the ticket it was merged into);
then a ``[#123]`` token in the subject, believed only from the ticket's customer or
someone who already wrote on it — a stranger quoting a number gets a new ticket.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Q

from integrations.models import EmailTicketMapping, MailDirection
from tickets.models import Comment, Ticket

# Merges form a chain at most this long before we stop following it (and a cycle, which
# ticket_merge forbids, cannot loop here).
MAX_MERGE_HOPS = 10
# A References header can list hundreds of ids; the most recent ones are what matter.
MAX_REFERENCE_IDS = 100
SUBJECT_TOKEN_RE = re.compile(r"\[#(\d{1,9})\]")


def final_ticket(workspace_id: int, ticket_id: int) -> Ticket | None:
    """The ticket a conversation lives on now: merges followed, deleted tickets skipped."""
    seen: set[int] = set()
    for _ in range(MAX_MERGE_HOPS):
        ticket = (
            Ticket.objects.filter(pk=ticket_id, workspace_id=workspace_id)
            .select_related("customer")
            .first()
        )
        if ticket is None or ticket.deleted_at is not None:
            return None
        if ticket.merged_into_id is None:
            return ticket
        seen.add(ticket.pk)
        if ticket.merged_into_id in seen:
            return None
        ticket_id = ticket.merged_into_id
    return None


def _final_of(workspace_id: int, ticket: Ticket) -> Ticket | None:
    """``final_ticket`` for a ticket already read: no query unless it was merged."""
    if ticket.workspace_id != workspace_id or ticket.deleted_at is not None:
        return None
    if ticket.merged_into_id is None:
        return ticket
    return final_ticket(workspace_id, ticket.pk)


def ticket_for_message_ids(workspace_id: int, ids: Sequence[str]) -> Ticket | None:
    """The ticket of the first id (in the order given) that a mapping knows."""
    return lookup(workspace_id, "", ids).ticket


@dataclass(frozen=True)
class Known:
    """What the workspace's mappings know of a received message."""

    # (ticket id, comment id) when this very Message-ID came in before (through another
    # mailbox of the workspace): the message is that ticket's already.
    duplicate: tuple[int, int | None] | None
    # The ticket its In-Reply-To / References lead to (merges followed), if any.
    ticket: Ticket | None


def lookup(workspace_id: int, message_id: str, thread_ids: Sequence[str]) -> Known:
    """The message's own id and its thread ids against ``EmailTicketMapping``: one query
    on mapping_ws_message_id_idx, the tickets (and their customers) read in the same
    query, so threading costs no more unless a ticket was merged."""
    wanted = wanted_ids(message_id, thread_ids)
    if not wanted:
        return Known(None, None)
    return resolve(workspace_id, message_id, thread_ids, mappings(workspace_id, wanted))


def wanted_ids(message_id: str, thread_ids: Sequence[str]) -> list[str]:
    """The Message-IDs ``lookup`` reads for a message: its own, then its thread's."""
    ids = [i for i in dict.fromkeys(thread_ids) if i][:MAX_REFERENCE_IDS]
    return list(dict.fromkeys([message_id, *ids] if message_id else ids))


def mappings(workspace_id: int, message_ids: Sequence[str]) -> list[EmailTicketMapping]:
    """The workspace's mappings of these Message-IDs with their tickets and customers, in
    the order they were written (one query; a page of messages asks for all of its ids
    at once)."""
    if not message_ids:
        return []
    return list(
        EmailTicketMapping.objects.filter(workspace_id=workspace_id, message_id__in=message_ids)
        .select_related("ticket__customer")
        .order_by("pk")
    )


def resolve(
    workspace_id: int,
    message_id: str,
    thread_ids: Sequence[str],
    rows: Sequence[EmailTicketMapping],
) -> Known:
    """What ``rows`` — the mappings of ``wanted_ids``, in the order they were written —
    know of the message."""
    ids = [i for i in dict.fromkeys(thread_ids) if i][:MAX_REFERENCE_IDS]
    duplicate = next(
        (
            (row.ticket_id, row.comment_id)
            for row in rows
            if message_id
            and row.message_id == message_id
            and row.direction == MailDirection.INBOUND
        ),
        None,
    )
    rank = {mid: position for position, mid in enumerate(ids)}
    threaded = sorted(
        (row for row in rows if row.message_id in rank),
        key=lambda row: (rank[row.message_id], row.ticket_id),
    )
    for row in threaded:
        ticket = _final_of(workspace_id, row.ticket)
        if ticket is not None:
            return Known(duplicate, ticket)
    return Known(duplicate, None)


def header_thread_ids(in_reply_to: Sequence[str], references: Sequence[str]) -> list[str]:
    """In-Reply-To first, then References newest first."""
    return list(dict.fromkeys([*in_reply_to, *reversed(references)]))


def is_participant(ticket: Ticket, address: str) -> bool:
    """The ticket's customer, or anyone who already wrote on it (customer or agent)."""
    address = address.lower()
    if ticket.customer.email == address:
        return True
    return (
        Comment.objects.filter(ticket=ticket)
        .filter(Q(author_customer__email=address) | Q(author_agent__user__email=address))
        .exists()
    )


def ticket_for_subject(workspace_id: int, subject: str, sender: str) -> Ticket | None:
    for number in dict.fromkeys(SUBJECT_TOKEN_RE.findall(subject or "")):
        named = (
            Ticket.objects.filter(
                workspace_id=workspace_id, number=int(number), deleted_at__isnull=True
            )
            .select_related("customer")
            .first()
        )
        if named is None:
            continue
        ticket = final_ticket(workspace_id, named.pk)
        if ticket is None:
            continue
        if is_participant(named, sender) or (
            ticket.pk != named.pk and is_participant(ticket, sender)
        ):
            return ticket
    return None
