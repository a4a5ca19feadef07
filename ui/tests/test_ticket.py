"""The ticket page: thread, reply box, side panel, attachments, merge, live bundle."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from enque.tests.factories import (
    AgentFactory,
    CannedReplyFactory,
    CategoryFactory,
    CustomerFactory,
    TeamFactory,
)
from tickets.actors import Actor
from tickets.models import (
    CannedReply,
    Comment,
    ScheduledComment,
    Ticket,
    TicketAttachment,
    TicketEvent,
    TicketEventKind,
)
from tickets.services import comment_create, ticket_create, ticket_update
from tickets.tests.api_support import use_memory_storage
from workspaces.models import Agent, AgentRole, Customer, Workspace

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def media(settings: Any) -> None:
    use_memory_storage(settings)


def url(name: str, ticket: Ticket, *args: Any) -> str:
    return reverse(f"ui:{name}", args=[ticket.number, *args])


def page(client: Client, ticket: Ticket) -> str:
    response = client.get(url("ticket", ticket))
    assert response.status_code == 200
    return response.content.decode()


def attach(workspace: Workspace, data: bytes, name: str, **fields: Any) -> TicketAttachment:
    attachment = TicketAttachment(
        workspace=workspace,
        filename=name,
        content_type=fields.pop("content_type", "image/png"),
        size=len(data),
        **fields,
    )
    attachment.file.save(name, ContentFile(data), save=False)
    attachment.save()
    return attachment


# --- The thread ------------------------------------------------------------------------------


def test_the_thread_interleaves_messages_notes_and_history(
    alice_client: Client, ticket_a: Ticket, alice: Agent, bob: Agent
) -> None:
    comment_create(ticket=ticket_a, actor=Actor.for_agent(bob), body_text="Checking the printer.")
    ticket_update(ticket=ticket_a, actor=Actor.for_agent(alice), assignee=bob)
    comment_create(
        ticket=ticket_a, actor=Actor.for_agent(alice), body_text="VIP customer.", internal=True
    )
    html = page(alice_client, ticket_a)
    first = html.index("Our printer is on fire again.")
    reply = html.index("Checking the printer.")
    assigned = html.index("assigned the ticket to <strong>Bob Agent</strong>")
    note = html.index("VIP customer.")
    assert first < reply < assigned < note
    assert html.count("msg msg-note") == 1
    assert "Internal note" in html
    assert "msg msg-customer" in html and "msg msg-agent" in html


def test_html_is_sanitised_and_inline_images_point_at_the_ui(
    alice_client: Client, ticket_a: Ticket, workspace_a: Workspace
) -> None:
    first = ticket_a.comments.get()
    image = attach(workspace_a, PNG, "chart.png", ticket=ticket_a, comment=first, is_inline=True)
    cid = attach(
        workspace_a, PNG, "logo.png", ticket=ticket_a, comment=first, is_inline=True,
        content_id="<logo@mail>",
    )  # fmt: skip
    document = attach(
        workspace_a, b"%PDF-1.7", "invoice.pdf", ticket=ticket_a, comment=first,
        content_type="application/pdf",
    )  # fmt: skip
    Comment.objects.filter(pk=first.pk).update(
        body_html=(
            f'<p>See <img src="/v1/attachments/{image.pk}/download"> and <img src="cid:logo@mail">'
            '<script>alert(1)</script><a href="javascript:alert(2)">x</a></p>'
        )
    )
    html = page(alice_client, ticket_a)
    assert f'src="/attachments/{image.pk}/inline"' in html
    assert f'src="/attachments/{cid.pk}/inline"' in html
    assert "<script>alert(1)" not in html and "javascript:alert" not in html
    # The PDF is listed under the message; the inline images are shown, not listed.
    assert f'href="/attachments/{document.pk}"' in html
    assert f'href="/attachments/{image.pk}"' not in html


def test_attachments_download_and_inline(
    alice_client: Client, ticket_a: Ticket, workspace_a: Workspace
) -> None:
    image = attach(workspace_a, PNG, "chart.png", ticket=ticket_a)
    pdf = attach(workspace_a, b"%PDF-1.7", "a.pdf", ticket=ticket_a, content_type="application/pdf")
    response = alice_client.get(reverse("ui:attachment_inline", args=[image.pk]))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("inline;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == PNG
    download = alice_client.get(reverse("ui:attachment_download", args=[image.pk]))
    assert download["Content-Disposition"].startswith("attachment;")
    # Only raster images are ever inline.
    response = alice_client.get(reverse("ui:attachment_inline", args=[pdf.pk]))
    assert response["Content-Disposition"].startswith("attachment;")


def test_the_first_email_whole_is_offered_when_trimmed(
    alice_client: Client, workspace_a: Workspace, customer_a: Customer
) -> None:
    ticket = ticket_create(
        workspace=workspace_a,
        actor=Actor.for_customer(customer_a),
        subject="Re: order",
        body_html="<p>Thanks!</p>",
        customer=customer_a,
        channel="email",
        original_html="<p>Thanks!</p><blockquote>On Monday you wrote: hello</blockquote>",
    )
    html = page(alice_client, ticket)
    assert "Show the whole email" in html
    assert "On Monday you wrote" in html


def test_the_side_panel_shows_sla_and_the_customers_other_tickets(
    alice_client: Client, ticket_a: Ticket, workspace_a: Workspace, customer_a: Customer
) -> None:
    Ticket.objects.filter(pk=ticket_a.pk).update(
        first_response_due_at=timezone.now() + timedelta(hours=2, minutes=5),
        sla_due_at=timezone.now() - timedelta(hours=1),
    )
    other = ticket_create(
        workspace=workspace_a,
        actor=Actor.for_customer(customer_a),
        subject="Scanner also broken",
        body_text="Yes, really.",
        customer=customer_a,
    )
    html = page(alice_client, ticket_a)
    assert "First response" in html
    assert re.search(r"2h [45]m left", html)
    assert "Resolution" in html and "overdue" in html
    assert other.subject in html
    assert customer_a.email in html


def test_a_merged_ticket_points_to_its_target_and_takes_no_reply(
    alice_client: Client, ticket_a: Ticket, workspace_a: Workspace, customer_a: Customer
) -> None:
    target = ticket_create(
        workspace=workspace_a,
        actor=Actor.for_customer(customer_a),
        subject="Target",
        body_text="x",
        customer=customer_a,
    )
    response = alice_client.post(url("ticket_merge", ticket_a), {"into": target.number})
    assert response["Location"] == url("ticket", target)
    html = page(alice_client, ticket_a)
    assert f'merged into <a href="/tickets/{target.number}">#{target.number}</a>' in html
    assert 'id="reply-form"' not in html


# --- Replying --------------------------------------------------------------------------------


def test_reply_note_and_status_go_through_the_services(
    alice_client: Client, ticket_a: Ticket, alice: Agent
) -> None:
    response = alice_client.post(
        url("ticket_reply", ticket_a),
        {"mode": "reply", "body": "A technician is on the way.", "status": "pending"},
    )
    assert response.status_code == 302
    reply = Comment.objects.filter(ticket=ticket_a, author_agent=alice).get()
    assert not reply.is_internal and reply.via == "web"
    ticket_a.refresh_from_db()
    assert ticket_a.status == "pending"
    assert ticket_a.first_response_at is not None
    assert TicketEvent.objects.filter(ticket=ticket_a, kind=TicketEventKind.REPLIED).exists()

    alice_client.post(url("ticket_reply", ticket_a), {"mode": "note", "body": "Called them too."})
    note = Comment.objects.filter(ticket=ticket_a, is_internal=True).get()
    assert note.body_text == "Called them too."
    assert TicketEvent.objects.filter(ticket=ticket_a, kind=TicketEventKind.NOTE_ADDED).exists()


def test_an_htmx_reply_answers_the_live_bundle_and_a_fresh_form(
    alice_client: Client, ticket_a: Ticket
) -> None:
    response = alice_client.post(
        url("ticket_reply", ticket_a), {"mode": "reply", "body": "On it."}, **HTMX
    )
    html = response.content.decode()
    assert response.status_code == 200
    for part in ('id="ticket-header"', 'id="thread"', 'id="ticket-panel"', 'id="reply-form"'):
        assert part in html
    assert html.count('hx-swap-oob="true"') == 4
    assert "On it." in html
    assert "Reply sent." in html  # the toast


def test_an_empty_reply_is_a_form_error(alice_client: Client, ticket_a: Ticket) -> None:
    response = alice_client.post(
        url("ticket_reply", ticket_a), {"mode": "reply", "body": " "}, **HTMX
    )
    assert response.status_code == 422
    assert response["HX-Retarget"] == "#reply-form"
    assert b"A reply needs a body." in response.content
    plain = alice_client.post(url("ticket_reply", ticket_a), {"mode": "reply", "body": ""})
    assert plain.status_code == 400
    assert b"A reply needs a body." in plain.content


def test_a_light_agent_writes_notes_only(
    signed_in, ticket_a: Ticket, workspace_a: Workspace
) -> None:
    light = AgentFactory(workspace=workspace_a, role=AgentRole.LIGHT)
    client = signed_in(light)
    html = page(client, ticket_a)
    assert 'value="reply"' not in html  # no public reply mode offered
    response = client.post(url("ticket_reply", ticket_a), {"mode": "reply", "body": "Hi"})
    assert response.status_code == 400
    assert not Comment.objects.filter(author_agent=light).exists()
    client.post(url("ticket_reply", ticket_a), {"mode": "note", "body": "FYI"})
    assert Comment.objects.filter(author_agent=light, is_internal=True).exists()
    # ... and cannot change the ticket.
    client.post(url("ticket_update", ticket_a), {"status": "closed"})
    ticket_a.refresh_from_db()
    assert ticket_a.status == "new"


def test_send_later(alice_client: Client, ticket_a: Ticket) -> None:
    when = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    response = alice_client.post(
        url("ticket_reply", ticket_a),
        {"mode": "reply", "body": "Good morning!", "send_at_iso": when.isoformat()},
    )
    assert response.status_code == 302
    scheduled = ScheduledComment.objects.get(ticket=ticket_a)
    assert scheduled.send_at == when and scheduled.status == "pending"
    assert not Comment.objects.filter(body_text="Good morning!").exists()
    assert TicketEvent.objects.filter(
        ticket=ticket_a, kind=TicketEventKind.REPLY_SCHEDULED
    ).exists()
    html = page(alice_client, ticket_a)
    assert "Good morning!" in html and "Scheduled" in html

    alice_client.post(reverse("ui:scheduled_cancel", args=[scheduled.pk]))
    scheduled.refresh_from_db()
    assert scheduled.status == "cancelled"


def test_send_later_without_the_browsers_offset_reads_the_workspace_zone(
    alice_client: Client, ticket_a: Ticket, workspace_a: Workspace
) -> None:
    workspace_a.timezone = "Europe/Berlin"
    workspace_a.save(update_fields=["timezone"])
    local = (timezone.now() + timedelta(days=2)).astimezone(timezone.get_default_timezone())
    alice_client.post(
        url("ticket_reply", ticket_a),
        {"mode": "reply", "body": "Later", "send_at": local.strftime("%Y-%m-%dT%H:%M")},
    )
    scheduled = ScheduledComment.objects.get(ticket=ticket_a)
    naive = local.replace(tzinfo=None, second=0, microsecond=0)
    assert (
        timezone.localtime(
            scheduled.send_at, timezone=__import__("zoneinfo").ZoneInfo("Europe/Berlin")
        ).replace(tzinfo=None)
        == naive
    )


def test_send_later_in_the_past_is_refused(alice_client: Client, ticket_a: Ticket) -> None:
    past = (timezone.now() - timedelta(hours=1)).isoformat()
    response = alice_client.post(
        url("ticket_reply", ticket_a), {"mode": "reply", "body": "x", "send_at_iso": past}
    )
    assert response.status_code == 400
    assert b"Pick a time in the future." in response.content
    assert not ScheduledComment.objects.exists()


# --- Attachments -----------------------------------------------------------------------------


def test_upload_then_reply_with_it(alice_client: Client, ticket_a: Ticket) -> None:
    response = alice_client.post(
        reverse("ui:attachment_upload"), {"file": SimpleUploadedFile("shot.png", PNG)}
    )
    assert response.status_code == 201
    data = response.json()
    assert data["filename"] == "shot.png" and data["content_type"] == "image/png"
    alice_client.post(
        url("ticket_reply", ticket_a),
        {"mode": "reply", "body": "See attached.", "attachment_ids": [data["id"]]},
    )
    attachment = TicketAttachment.objects.get(pk=data["id"])
    assert attachment.comment.body_text == "See attached."
    assert attachment.ticket_id == ticket_a.pk
    assert "shot.png" in page(alice_client, ticket_a)


def test_files_posted_with_the_reply_are_attached(alice_client: Client, ticket_a: Ticket) -> None:
    alice_client.post(
        url("ticket_reply", ticket_a),
        {"mode": "note", "body": "Log attached", "files": [SimpleUploadedFile("log.txt", b"ok")]},
    )
    note = Comment.objects.get(body_text="Log attached")
    assert [a.filename for a in note.attachments.all()] == ["log.txt"]


def test_an_oversized_upload_is_refused(alice_client: Client, settings: Any) -> None:
    settings.MAX_ATTACHMENT_SIZE = 10
    response = alice_client.post(
        reverse("ui:attachment_upload"), {"file": SimpleUploadedFile("big.bin", b"x" * 11)}
    )
    assert response.status_code == 413
    assert "limit" in response.json()["error"]


def test_another_workspaces_attachment_cannot_be_claimed(
    alice_client: Client, ticket_a: Ticket, workspace_b: Workspace
) -> None:
    theirs = attach(workspace_b, PNG, "theirs.png")
    response = alice_client.post(
        url("ticket_reply", ticket_a),
        {"mode": "reply", "body": "Mine now?", "attachment_ids": [theirs.pk]},
    )
    assert response.status_code == 400
    theirs.refresh_from_db()
    assert theirs.ticket_id is None


# --- The side panel ------------------------------------------------------------------------


def test_each_field_changes_alone_with_history(
    alice_client: Client, ticket_a: Ticket, bob: Agent, workspace_a: Workspace
) -> None:
    team = TeamFactory(workspace=workspace_a, name="Hardware")
    category = CategoryFactory(workspace=workspace_a, name="Printers")
    for data in (
        {"priority": "urgent"},
        {"assignee": str(bob.pk)},
        {"team": str(team.pk)},
        {"category": str(category.pk)},
        {"status": "on_hold"},
    ):
        response = alice_client.post(url("ticket_update", ticket_a), data, **HTMX)
        assert response.status_code == 200
        assert 'id="ticket-panel" class="ticket-panel" aria-label="Ticket details" hx-swap-oob' in (
            response.content.decode()
        )
    ticket_a.refresh_from_db()
    assert (ticket_a.priority, ticket_a.assignee_id, ticket_a.team_id, ticket_a.category_id) == (
        "urgent",
        bob.pk,
        team.pk,
        category.pk,
    )
    assert ticket_a.status == "on_hold"
    fields = set(
        TicketEvent.objects.filter(ticket=ticket_a, kind=TicketEventKind.FIELD_CHANGED).values_list(
            "field", flat=True
        )
    )
    assert {"priority", "assignee", "team", "category", "status"} <= fields
    # Blank means none: unassign.
    alice_client.post(url("ticket_update", ticket_a), {"assignee": ""})
    ticket_a.refresh_from_db()
    assert ticket_a.assignee_id is None
    assert ticket_a.team_id == team.pk  # untouched


def test_references_of_another_workspace_are_refused(
    alice_client: Client, ticket_a: Ticket, charlie: Agent, workspace_b: Workspace
) -> None:
    foreign_team = TeamFactory(workspace=workspace_b)
    for data in ({"assignee": str(charlie.pk)}, {"team": str(foreign_team.pk)}):
        response = alice_client.post(url("ticket_update", ticket_a), data, **HTMX)
        assert response.status_code == 200
        assert b"Select a valid choice" in response.content
    ticket_a.refresh_from_db()
    assert ticket_a.assignee_id is None and ticket_a.team_id is None


def test_tags_are_added_and_removed(alice_client: Client, ticket_a: Ticket) -> None:
    alice_client.post(url("ticket_tags", ticket_a), {"add": "hardware"})
    alice_client.post(url("ticket_tags", ticket_a), {"add": "urgent-fix"})
    assert sorted(ticket_a.tags.values_list("name", flat=True)) == ["hardware", "urgent-fix"]
    alice_client.post(url("ticket_tags", ticket_a), {"remove": "hardware"})
    assert list(ticket_a.tags.values_list("name", flat=True)) == ["urgent-fix"]
    assert (
        TicketEvent.objects.filter(ticket=ticket_a, kind=TicketEventKind.TAGS_CHANGED).count() == 3
    )


def test_merge_into_a_missing_ticket_is_refused(alice_client: Client, ticket_a: Ticket) -> None:
    response = alice_client.post(url("ticket_merge", ticket_a), {"into": 999}, **HTMX)
    assert b"There is no ticket #999" in response.content
    ticket_a.refresh_from_db()
    assert ticket_a.merged_into_id is None


# --- Canned replies --------------------------------------------------------------------------


def test_a_canned_reply_renders_with_placeholders_filled(
    alice_client: Client, ticket_a: Ticket, workspace_a: Workspace
) -> None:
    canned = CannedReplyFactory(
        workspace=workspace_a, body="Hi {{customer.first_name}}, about #{{ticket.number}} {{x.y}}"
    )
    assert canned.title in page(alice_client, ticket_a)
    assert alice_client.get(url("canned_render", ticket_a, canned.pk)).status_code == 405
    response = alice_client.post(url("canned_render", ticket_a, canned.pk))
    assert response.json() == {
        "body": f"Hi Carol, about #{ticket_a.number} {{{{x.y}}}}",
        "unknown": ["{{x.y}}"],
    }
    assert CannedReply.objects.get(pk=canned.pk).usage_count == 1


def test_canned_replies_of_others_are_not_reachable(
    alice_client: Client, ticket_a: Ticket, bob: Agent, workspace_b: Workspace
) -> None:
    personal = CannedReplyFactory(workspace=bob.workspace, owner=bob, title="Bob's own")
    foreign = CannedReplyFactory(workspace=workspace_b)
    assert "Bob&#x27;s own" not in page(alice_client, ticket_a)
    assert alice_client.post(url("canned_render", ticket_a, personal.pk)).status_code == 404
    assert alice_client.post(url("canned_render", ticket_a, foreign.pk)).status_code == 404


# --- CSRF, live bundle, query budget ------------------------------------------------------------


def test_csrf_is_enforced(signed_in, alice: Agent, ticket_a: Ticket) -> None:
    client = signed_in(alice, enforce_csrf_checks=True)
    response = client.post(url("ticket_reply", ticket_a), {"mode": "reply", "body": "Hi"})
    assert response.status_code == 403
    assert b"Please try again" in response.content
    assert not Comment.objects.filter(body_text="Hi").exists()
    client.get(url("ticket", ticket_a))  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    response = client.post(
        url("ticket_reply", ticket_a), {"mode": "reply", "body": "Hi"}, HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 302
    assert Comment.objects.filter(body_text="Hi").exists()


def test_the_live_bundle(alice_client: Client, ticket_a: Ticket, bob: Agent) -> None:
    comment_create(ticket=ticket_a, actor=Actor.for_agent(bob), body_text="Made elsewhere")
    response = alice_client.get(url("ticket_live", ticket_a), **HTMX)
    html = response.content.decode()
    assert "<html" not in html
    assert "Made elsewhere" in html
    assert html.count('hx-swap-oob="true"') == 3


def build_thread(ticket: Ticket, agent: Agent, customer: Customer, size: int) -> None:
    workspace = ticket.workspace
    for index in range(size):
        comment = comment_create(
            ticket=ticket,
            actor=Actor.for_customer(customer) if index % 3 == 0 else Actor.for_agent(agent),
            body_text=f"Message {index}",
            internal=index % 3 == 2,
        )
        attach(workspace, PNG, f"f{index}.png", ticket=ticket, comment=comment)
        ticket_update(
            ticket=ticket,
            actor=Actor.for_agent(agent),
            priority=["low", "normal", "high"][index % 3],
            tags=[f"t{index}"],
        )
    CannedReplyFactory.create_batch(3, workspace=workspace)


@pytest.mark.parametrize("size", [2, 20])
def test_ticket_page_query_budget(
    alice_client: Client,
    alice: Agent,
    bob: Agent,
    ticket_a: Ticket,
    customer_a: Customer,
    workspace_a: Workspace,
    django_assert_max_num_queries: Any,
    size: int,
) -> None:
    build_thread(ticket_a, bob, customer_a, size)
    for _ in range(3):
        ticket_create(
            workspace=workspace_a,
            actor=Actor.for_customer(customer_a),
            subject="Another",
            body_text="x",
            customer=customer_a,
        )
    CustomerFactory(workspace=workspace_a)
    when = timezone.now() + timedelta(days=1)
    from tickets.services import comment_schedule

    comment_schedule(ticket=ticket_a, actor=Actor.for_agent(alice), send_at=when, body_text="L8r")
    # The same with 2 messages as with 20 (each with an attachment and history rows):
    #  1 session, 2 user, 3 membership, 4 the ticket (embedded objects, body, counts),
    #  5 its tags, 6 the comments with authors, 7 their attachments, 8 the history with
    #  actors, 9 agents, 10 teams, 11 categories, 12 pending scheduled replies,
    # 13 their attachments, 14 the customer's other tickets, 15 how many they have,
    # 16 canned replies, 17 the workspace switcher, 18 tags (the tag picker).
    # (+1 automation names, only when the history names an automation.)
    with django_assert_max_num_queries(18):
        response = alice_client.get(url("ticket", ticket_a))
    assert response.content.decode().count("Message ") >= size


def test_an_oversized_reply_body_is_refused_before_it_is_read(
    alice_client: Client, ticket_a: Ticket, settings: Any
) -> None:
    settings.MAX_ATTACHMENT_SIZE = 10
    response = alice_client.post(
        url("ticket_reply", ticket_a),
        {"mode": "note", "body": "x", "files": [SimpleUploadedFile("big.bin", b"x" * 11)]},
    )
    assert response.status_code == 413
    assert not Comment.objects.filter(body_text="x").exists()


def test_uploads_need_the_csrf_token(signed_in, alice: Agent) -> None:
    client = signed_in(alice, enforce_csrf_checks=True)
    file = SimpleUploadedFile("a.txt", b"hello")
    assert client.post(reverse("ui:attachment_upload"), {"file": file}).status_code == 403
    client.get(reverse("ui:inbox"))
    file = SimpleUploadedFile("a.txt", b"hello")
    response = client.post(
        reverse("ui:attachment_upload"),
        {"file": file},
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )
    assert response.status_code == 201
