"""Which ticket a received message belongs to.

In order: the message's In-Reply-To and References against ``EmailTicketMapping`` in the
workspace (most recent id first; a merged ticket leads to the ticket it was merged into);
then a ``[#123]`` token in the subject, believed only from the ticket's customer or
someone who already wrote on it — a stranger quoting a number gets a new ticket.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from django.db.models import Q

from integrations.models import EmailTicketMapping
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


def ticket_for_message_ids(workspace_id: int, ids: Sequence[str]) -> Ticket | None:
    """The ticket of the first id (in the order given) that a mapping knows."""
    ids = [i for i in dict.fromkeys(ids) if i][:MAX_REFERENCE_IDS]
    if not ids:
        return None
    # One query on mapping_ws_message_id_idx.
    rows = EmailTicketMapping.objects.filter(
        workspace_id=workspace_id, message_id__in=ids
    ).values_list("message_id", "ticket_id")
    rank = {message_id: position for position, message_id in enumerate(ids)}
    for _message_id, ticket_id in sorted(rows, key=lambda row: (rank[row[0]], row[1])):
        ticket = final_ticket(workspace_id, ticket_id)
        if ticket is not None:
            return ticket
    return None


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
