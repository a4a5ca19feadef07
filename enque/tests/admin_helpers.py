"""Helpers for the admin tests: one row of every admin-registered model, and the POST data
an admin change form would send back unchanged."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

from django.core.files.base import ContentFile
from django.forms import CheckboxInput, MultiWidget
from django.http import HttpResponse
from django.utils import timezone

from automation.models import (
    AssignmentCursor,
    Automation,
    AutomationAction,
    AutomationCondition,
    AutomationRun,
    BusinessHours,
    BusinessHoursSlot,
    DigestDelivery,
    Holiday,
    Macro,
    Notification,
    NotificationPreference,
    SLAPolicy,
    SLATarget,
    TicketSLA,
    WebhookDelivery,
    Workflow,
)
from enque.tests.factories import (
    CannedReplyFactory,
    CategoryFactory,
    CompanyFactory,
    TeamFactory,
)
from integrations.models import (
    EmailSyncConfig,
    EmailTicketMapping,
    InboundEmail,
    MailboxConnection,
    MicrosoftIntegration,
    MicrosoftToken,
    OutboundEmail,
)
from tickets.actors import Actor
from tickets.models import SavedView, Ticket, TicketAttachment
from tickets.services import comment_create, comment_schedule, ticket_update
from workspaces.models import (
    Agent,
    CompanyDomain,
    Customer,
    IdempotencyKey,
    Invitation,
    TeamMembership,
    Workspace,
)

# Plaintexts the secret tests look for in pages; distinctive so a hit is never a fluke.
IMAP_PASSWORD = "imap-pass-7f3a9c-plaintext"
SMTP_PASSWORD = "smtp-pass-51d0e2-plaintext"
CLIENT_SECRET = "client-secret-c0ffee-plaintext"
TOKEN_CACHE = '{"RefreshToken": {"rt": {"secret": "refresh-token-b16b00b5"}}}'


def populate(
    workspace: Workspace, agent: Agent, customer: Customer, ticket: Ticket, copy: int = 1
) -> dict:
    """At least one row of every model of the four apps, in ``workspace``.

    ``copy`` tells apart further calls for the same workspace (with another ticket), so a
    test can double every kind of row.
    """
    ws = workspace
    n = f"{ws.pk}-{copy}"
    actor = Actor.for_agent(agent)
    rows: dict[str, Any] = {"ticket": ticket}
    team = TeamFactory(workspace=ws)
    TeamMembership.objects.create(workspace=ws, team=team, agent=agent)
    company = CompanyFactory(workspace=ws)
    CompanyDomain.objects.create(workspace=ws, company=company, domain=f"{company.pk}.example")
    category = CategoryFactory(workspace=ws)
    CannedReplyFactory(workspace=ws, category=category, owner=agent)
    ticket_update(ticket=ticket, actor=actor, tags=["vip"], team=team, category=category)
    reply = comment_create(ticket=ticket, actor=actor, body_text="We are on it.")
    comment_create(ticket=ticket, actor=actor, body_text="Internal: call them.", internal=True)
    comment_schedule(
        ticket=ticket,
        actor=actor,
        body_text="Any news?",
        send_at=timezone.now() + timedelta(days=1),
    )
    rows["attachment"] = TicketAttachment.objects.create(
        workspace=ws,
        ticket=ticket,
        comment=reply,
        file=ContentFile(b"hello attachment", name="hello.txt"),
        filename="hello.txt",
        content_type="text/plain",
        size=16,
    )
    integration = MicrosoftIntegration.objects.create(
        workspace=ws, client_id=f"client-{n}", client_secret=CLIENT_SECRET
    )
    mailbox = MailboxConnection.objects.create(
        workspace=ws,
        provider="imap",
        email_address=f"support{copy}@{ws.slug}.test",
        imap_host="imap.example.test",
        imap_username="support",
        imap_password=IMAP_PASSWORD,
        smtp_password=SMTP_PASSWORD,
        microsoft_integration=integration,
        default_team=team,
    )
    rows["mailbox"] = mailbox
    Ticket.objects.filter(pk=ticket.pk).update(mailbox=mailbox)
    MicrosoftToken.objects.create(workspace=ws, mailbox=mailbox, token_cache=TOKEN_CACHE)
    EmailSyncConfig.objects.create(workspace=ws, mailbox=mailbox)
    EmailTicketMapping.objects.create(
        workspace=ws,
        mailbox=mailbox,
        ticket=ticket,
        direction="inbound",
        message_id=f"first-{n}@customer.test",
    )
    InboundEmail.objects.create(
        workspace=ws,
        mailbox=mailbox,
        raw=ContentFile(b"From: a@customer.test\r\nSubject: hi\r\n\r\nhello\r\n", name="m.eml"),
        size=48,
        sha256="0" * 64,
        message_id=f"first-{n}@customer.test",
        from_address="a@customer.test",
        subject="hi",
        ticket=ticket,
    )
    OutboundEmail.objects.create(
        workspace=ws,
        mailbox=mailbox,
        ticket=ticket,
        message_id=f"reply-{n}@enque.test",
        to_addresses=["a@customer.test"],
        subject="Re: hi",
        status="failed",
        last_error="550 mailbox unavailable",
    )
    workflow = Workflow.objects.create(
        workspace=ws, name=f"Triage {copy}", trigger="ticket_created"
    )
    automation = Automation.objects.create(
        workspace=ws, name="Urgent words", trigger="ticket_created", workflow=workflow
    )
    AutomationCondition.objects.create(
        workspace=ws, automation=automation, field="subject", operator="contains", value="fire"
    )
    AutomationAction.objects.create(
        workspace=ws,
        automation=automation,
        action_type="set_priority",
        params={"priority": "urgent"},
    )
    hours = BusinessHours.objects.create(workspace=ws, name="Office", is_default=copy == 1)
    BusinessHoursSlot.objects.create(
        workspace=ws, business_hours=hours, weekday=0, opens_at=time(9), closes_at=time(17)
    )
    Holiday.objects.create(
        workspace=ws, business_hours=hours, date=timezone.localdate(), name="Founders' day"
    )
    policy = SLAPolicy.objects.create(
        workspace=ws, name="Standard", business_hours=hours, company=company
    )
    SLATarget.objects.create(
        workspace=ws, policy=policy, priority="normal", first_response_minutes=60
    )
    # What the engine records, macros and notifications (automation).
    run = AutomationRun.objects.create(
        workspace=ws, automation=automation, ticket=ticket, trigger="ticket_created"
    )
    WebhookDelivery.objects.create(
        workspace=ws,
        automation=automation,
        run=run,
        ticket=ticket,
        url="https://hooks.example.com/enque",
        body="{}",
        secret=f"whsec-{n}",
    )
    AssignmentCursor.objects.create(workspace=ws, team=team, last_agent=agent)
    TicketSLA.objects.create(workspace=ws, ticket=ticket, policy=policy, first_response_minutes=60)
    Macro.objects.create(
        workspace=ws,
        name=f"Ask for details {copy}",
        actions=[{"action_type": "set_status", "params": {"status": "pending"}}],
    )
    Notification.objects.create(
        workspace=ws, recipient=agent, kind="assigned", ticket=ticket, data={"message": "Yours"}
    )
    NotificationPreference.objects.get_or_create(
        workspace=ws, agent=agent, kind="mentioned", defaults={"email": False}
    )
    DigestDelivery.objects.create(
        workspace=ws,
        agent=agent,
        kind="daily_digest",
        period_start=timezone.localdate() - timedelta(days=copy),
        status="sent",
    )
    SavedView.objects.create(workspace=ws, name=f"Urgent {copy}", filters={"priority": ["urgent"]})
    SavedView.objects.create(
        workspace=ws, name=f"Mine {copy}", owner=agent, filters={"assignee": "me"}
    )
    Invitation.objects.create(
        workspace=ws,
        email=f"new-agent{copy}@{ws.slug}.test",
        token_hash=f"{ws.pk:032d}{copy:032d}",
        expires_at=timezone.now() + timedelta(days=7),
        invited_by=agent,
    )
    IdempotencyKey.objects.create(
        workspace=ws,
        agent=agent,
        key=f"key-{n}",
        fingerprint="f" * 64,
        response_status=201,
        response_body={"number": ticket.number},
        expires_at=timezone.now() + timedelta(hours=24),
    )
    return rows


def changeform_data(response: HttpResponse) -> dict[str, Any]:
    """The POST body that submits an admin add/change page as rendered (inlines included)."""
    data: dict[str, Any] = {}

    def add_form(form: Any) -> None:
        for name, field in form.fields.items():
            key = form.add_prefix(name)
            value = form[name].value()
            widget = field.widget
            if isinstance(widget, CheckboxInput):
                if value:
                    data[key] = "on"
            elif isinstance(widget, MultiWidget):
                for i, part in enumerate(widget.decompress(value)):
                    data[f"{key}_{i}"] = "" if part is None else part
            elif isinstance(value, list | tuple):
                data[key] = [str(v) for v in value]
            else:
                data[key] = "" if value is None else value

    add_form(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        add_form(formset.management_form)
        for form in formset.forms:
            add_form(form)
    return data
