"""Agent notifications: in-app rows, email, the live push, and Microsoft Teams posts.

Who is told what (``on_ticket_change``, a ``tickets.hooks`` listener, so after commit):

- ``assigned``: the new assignee of a ticket, unless they assigned it to themselves;
- ``customer_replied``: the assignee of a ticket the customer wrote on;
- ``mentioned``: the agents an internal note names with ``@`` (``mentioned_agents``);
- ``sla_warning``: the assignee (else the team's agents) when a target is about to be
  breached (``automation.sla``);
- ``automation``: whoever a rule's ``notify_agents`` action names;
- digests: ``automation.digests``.

Each agent's ``NotificationPreference`` for the kind decides in-app and email (no row: the
defaults below). An in-app notification is pushed on commit to the agent's realtime group
``ws.<workspace>.agent.<agent>`` (the ``agent:me`` channel) as ``notification.created``;
email goes through the worker (``automation.tasks.send_notification_email``), enqueued on
commit. A push or a Teams post that fails is logged, never raised: the change is committed.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError

from automation.models import DIGEST_KINDS, Notification, NotificationKind, NotificationPreference
from tickets.hooks import TicketChange
from tickets.models import Comment, Ticket
from workspaces.models import Agent, Team

logger = logging.getLogger(__name__)

# kind -> (in_app, email) when the agent has not chosen.
DEFAULT_PREFERENCES: dict[str, tuple[bool, bool]] = {
    NotificationKind.ASSIGNED: (True, True),
    NotificationKind.CUSTOMER_REPLIED: (True, True),
    NotificationKind.MENTIONED: (True, True),
    NotificationKind.SLA_WARNING: (True, True),
    NotificationKind.AUTOMATION: (True, True),
    NotificationKind.DAILY_DIGEST: (False, True),
    NotificationKind.WEEKLY_DIGEST: (False, True),
}

# The realtime event type of a new notification, and the consumer's handler for it.
EVENT_TYPE = "notification.created"
GROUP_MESSAGE_TYPE = "realtime.event"
MAX_MESSAGE = 500


def agent_group(workspace_id: int, agent_id: int) -> str:
    # Spelled as realtime.groups.agent spells it: the consumer joins it for "agent:me".
    return f"ws.{workspace_id}.agent.{agent_id}"


# --- Preferences ------------------------------------------------------------------------------


def preferences_of(agent_ids: Iterable[int], kind: str) -> dict[int, tuple[bool, bool]]:
    """(in_app, email) for each agent for ``kind``: one query."""
    ids = list(agent_ids)
    chosen = {
        agent_id: (in_app, email)
        for agent_id, in_app, email in NotificationPreference.objects.filter(
            agent_id__in=ids, kind=kind
        ).values_list("agent_id", "in_app", "email")
    }
    default = DEFAULT_PREFERENCES[kind]
    result = {pk: chosen.get(pk, default) for pk in ids}
    if kind in DIGEST_KINDS:
        result = {pk: (False, email) for pk, (_in_app, email) in result.items()}
    return result


# --- Notify -----------------------------------------------------------------------------------


def notify(
    *,
    recipients: Iterable[Agent],
    kind: str,
    ticket: Ticket | None,
    message: str,
    data: dict[str, Any] | None = None,
) -> list[Agent]:
    """Notify each active recipient of the ticket's workspace as their preferences say;
    returns those who got something (in-app, email or both)."""
    workspace_id = ticket.workspace_id if ticket else None
    unique: dict[int, Agent] = {}
    for agent in recipients:
        if agent.is_active and (workspace_id is None or agent.workspace_id == workspace_id):
            unique.setdefault(agent.pk, agent)
    if not unique:
        return []
    message = " ".join(message.split())[:MAX_MESSAGE]
    payload = {
        "message": message,
        **({"ticket_number": ticket.number, "subject": ticket.subject} if ticket else {}),
        **(data or {}),
    }
    preferences = preferences_of(unique, kind)
    notified: list[Agent] = []
    rows: list[Notification] = []
    mails: list[tuple[int, str, str]] = []
    for agent in unique.values():
        in_app, email = preferences[agent.pk]
        if in_app:
            rows.append(
                Notification(
                    workspace_id=agent.workspace_id,
                    recipient=agent,
                    kind=kind,
                    ticket=ticket,
                    data=payload,
                )
            )
        if email:
            subject, body = email_text(kind, message, ticket)
            mails.append((agent.pk, subject, body))
        if in_app or email:
            notified.append(agent)
    with transaction.atomic():
        Notification.objects.bulk_create(rows)
        if rows:
            events = [push_message(row) for row in rows]
            transaction.on_commit(lambda: push_all(events))
        if mails:
            transaction.on_commit(lambda: _enqueue_mails(mails))
    return notified


def email_text(kind: str, message: str, ticket: Ticket | None) -> tuple[str, str]:
    label = NotificationKind(kind).label
    subject = message if len(message) <= 150 else message[:147] + "..."
    lines = [message, ""]
    if ticket is not None:
        lines.append(f"Ticket #{ticket.number}: {ticket.subject}")
        lines.append(f"{settings.APP_BASE_URL}/tickets/{ticket.number}")
        lines.append("")
    lines.append(f"You get this email because of your notification settings ({label}).")
    return subject, "\n".join(lines)


def _enqueue_mails(mails: list[tuple[int, str, str]]) -> None:
    from automation import tasks

    for agent_id, subject, body in mails:
        tasks.send_notification_email.delay(agent_id, subject, body)


def send_email(agent_id: int, subject: str, body: str) -> bool:
    """The worker's side: mail one agent (still active) at their login address."""
    from django.core.mail import send_mail

    agent = Agent.objects.select_related("user").filter(pk=agent_id, is_active=True).first()
    if agent is None or not agent.user.is_active:
        return False
    send_mail(subject, body, None, [agent.user.email])
    return True


def output(notification: Notification) -> dict[str, Any]:
    """The JSON of a notification: the API's shape and the realtime event's data."""
    return {
        "id": notification.pk,
        "kind": notification.kind,
        "ticket": notification.data.get("ticket_number"),
        "data": notification.data,
        "read_at": notification.read_at,
        "created_at": notification.created_at,
    }


def push_message(notification: Notification) -> tuple[str, dict[str, Any]]:
    """(group, channel-layer message) in the realtime event format of realtime.publish."""
    event = {
        "type": EVENT_TYPE,
        "id": uuid.uuid4().hex,
        "workspace": notification.workspace_id,
        "ticket": notification.data.get("ticket_number"),
        "actor": None,
        "data": output(notification),
        "at": timezone.now().isoformat(),
    }
    message = {
        "type": GROUP_MESSAGE_TYPE,
        "id": event["id"],
        "agents_only": True,
        "text": json.dumps(event, cls=DjangoJSONEncoder, separators=(",", ":")),
    }
    return agent_group(notification.workspace_id, notification.recipient_id), message


def push_all(events: list[tuple[str, dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for group, message in events:
        try:
            async_to_sync(layer.group_send)(group, message)
        except (RedisError, OSError, TimeoutError, ChannelFull):
            # The change is committed: a channel layer that is down is logged, and the
            # agent sees the notification on their next fetch.
            logger.exception("notifications: could not push to %s", group)


# --- Teams ------------------------------------------------------------------------------------


def post_to_team(team_id: int | None, text: str) -> None:
    """Post to the team's Microsoft Teams channel after commit, if it has a webhook."""
    if not team_id:
        return
    from automation import tasks

    transaction.on_commit(lambda: tasks.post_to_teams.delay(team_id, text))


def teams_send(team_id: int, text: str) -> bool:
    team = Team.objects.filter(pk=team_id).first()
    if team is None or not team.teams_webhook_url:
        return False
    from automation import webhooks

    webhooks.teams_post(team.teams_webhook_url, text)
    return True


# --- Mentions ---------------------------------------------------------------------------------

# An "@" that starts a mention: not inside a word or an email address (bob@example.com).
_MENTION_AT = re.compile(r"(?<![\w@.+-])@")
_HANDLE_END = re.compile(r"[\w-]")


def _handles(agent: Agent) -> set[str]:
    name = " ".join(agent.name.split()).lower()
    handles = {name, name.replace(" ", ""), agent.user.email.split("@")[0].lower()}
    if name.split():
        handles.add(name.split()[0])
    return {h for h in handles if h}


def mentioned_agents(text: str, *, workspace_id: int, author_id: int | None = None) -> list[Agent]:
    """The active agents of the workspace that ``text`` mentions: ``@`` followed by an
    agent's name (``@Bob Agent``), that name without spaces (``@bobagent``), their first
    name (``@bob``) or their email's local part. The longest handle wins; a handle that
    fits several agents (two Bobs) names nobody, so only the agents named exactly are
    notified, never a guess. The author is not notified of their own mention."""
    if "@" not in text:
        return []
    agents = list(
        Agent.objects.filter(workspace_id=workspace_id, is_active=True).select_related("user")
    )
    owners: dict[str, set[int]] = {}
    for agent in agents:
        for handle in _handles(agent):
            owners.setdefault(handle, set()).add(agent.pk)
    handles = sorted(owners, key=len, reverse=True)
    lowered = text.lower()
    found: set[int] = set()
    for match in _MENTION_AT.finditer(lowered):
        rest = lowered[match.end() : match.end() + 200]
        for handle in handles:
            if rest.startswith(handle) and not _HANDLE_END.match(
                rest[len(handle) : len(handle) + 1]
            ):
                if len(owners[handle]) == 1:
                    found |= owners[handle]
                break
    return [a for a in agents if a.pk in found and a.pk != author_id]


# --- Recipients of rules and SLA warnings -----------------------------------------------------


def team_members(team_id: int, workspace_id: int) -> list[Agent]:
    return list(
        Agent.objects.filter(
            workspace_id=workspace_id, is_active=True, team_memberships__team_id=team_id
        ).select_related("user")
    )


def rule_recipients(ticket: Ticket, params: dict[str, Any]) -> list[Agent]:
    """Whom a ``notify_agents`` action names: agents, a team's agents, the assignee."""
    ids = set(params.get("agent_ids") or [])
    agents = list(
        Agent.objects.filter(workspace_id=ticket.workspace_id, is_active=True, pk__in=ids)
    )
    if params.get("team_id"):
        agents += team_members(params["team_id"], ticket.workspace_id)
    if params.get("assignee") and ticket.assignee_id:
        agents += list(
            Agent.objects.filter(
                workspace_id=ticket.workspace_id, is_active=True, pk=ticket.assignee_id
            )
        )
    return list({a.pk: a for a in agents}.values())


# --- The hooks listener -----------------------------------------------------------------------


def on_ticket_change(change: TicketChange) -> None:
    if change.type == "ticket.assigned":
        _on_assigned(change)
    elif change.type == "comment.created":
        _on_comment(change)
    elif change.type == "ticket.updated":
        team = change.data.get("changes", {}).get("team")
        if team and team.get("new"):
            ticket = _ticket(change)
            if ticket is not None:
                post_to_team(
                    team["new"], f"Ticket #{ticket.number} is now with the team: {ticket.subject}"
                )


def _ticket(change: TicketChange) -> Ticket | None:
    return (
        Ticket.objects.filter(
            pk=change.ticket_id, workspace_id=change.workspace_id, deleted_at__isnull=True
        )
        .select_related("assignee__user")
        .first()
    )


def _on_assigned(change: TicketChange) -> None:
    assignee_id = change.data.get("assignee")
    if not assignee_id or assignee_id == change.actor.get("agent"):
        return
    ticket = _ticket(change)
    if ticket is None or ticket.assignee_id != assignee_id:
        return
    notify(
        recipients=[ticket.assignee],
        kind=NotificationKind.ASSIGNED,
        ticket=ticket,
        message=f"Ticket #{ticket.number} was assigned to you: {ticket.subject}",
        data={
            "by_agent": change.actor.get("agent"),
            "by_automation": change.actor.get("automation"),
        },
    )


def _on_comment(change: TicketChange) -> None:
    author_type = change.data.get("author_type")
    if author_type == "customer":
        ticket = _ticket(change)
        if ticket is None or ticket.assignee is None:
            return
        notify(
            recipients=[ticket.assignee],
            kind=NotificationKind.CUSTOMER_REPLIED,
            ticket=ticket,
            message=f"The customer replied on #{ticket.number}: {ticket.subject}",
            data={"comment": change.data.get("comment")},
        )
    elif author_type == "agent" and change.data.get("internal"):
        comment = (
            Comment.objects.filter(pk=change.data.get("comment"), workspace_id=change.workspace_id)
            .select_related("author_agent__user", "ticket")
            .first()
        )
        if comment is None:
            return
        mentioned = mentioned_agents(
            comment.body_text, workspace_id=change.workspace_id, author_id=comment.author_agent_id
        )
        if not mentioned:
            return
        author = comment.author_agent.name if comment.author_agent else "Someone"
        notify(
            recipients=mentioned,
            kind=NotificationKind.MENTIONED,
            ticket=comment.ticket,
            message=f"{author} mentioned you on #{comment.ticket.number}: {comment.ticket.subject}",
            data={"comment": comment.pk, "by_agent": comment.author_agent_id},
        )
