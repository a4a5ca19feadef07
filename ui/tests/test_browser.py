"""The agent UI in a real Chromium (Playwright), against pytest-django's live server.

The flows an agent does all day: sign in; find a ticket through a view and through search;
reply, add a note, assign, change the status, use a canned reply, attach a file. The tests
leave screenshots of the inbox, a ticket and a customer in test-artifacts/screenshots/.
Live updates over the websocket are in test_browser_live.py (they need an ASGI server).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import BrowserContext, expect

from enque.tests.factories import CannedReplyFactory, CompanyFactory, TeamFactory
from tickets.actors import Actor
from tickets.models import (
    Comment,
    ScheduledComment,
    Ticket,
    TicketAttachment,
    TicketEvent,
    TicketEventKind,
)
from tickets.services import comment_create, ticket_create, ticket_update
from tickets.tests.api_support import use_memory_storage
from ui.tests.browser import screenshot, sign_in, ticket_hooks_muted
from workspaces.models import Agent, Customer, Workspace

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"  # enque.tests.factories.UserFactory's


@pytest.fixture(autouse=True)
def media(settings: Any) -> None:
    use_memory_storage(settings)


@pytest.fixture
def helpdesk(
    chromium: Any, workspace_a: Workspace, alice: Agent, bob: Agent, customer_a: Customer
) -> dict[str, Any]:
    with ticket_hooks_muted():
        return build_helpdesk(workspace_a, alice, bob, customer_a)


def build_helpdesk(
    workspace_a: Workspace, alice: Agent, bob: Agent, customer_a: Customer
) -> dict[str, Any]:
    """A small but lived-in workspace: tickets in several states, a team, a company, tags,
    a canned reply and some history."""
    ticket_a = ticket_create(
        workspace=workspace_a,
        actor=Actor.for_customer(customer_a),
        subject="Printer on fire",
        body_text="Our printer is on fire again. Please help.",
        customer=customer_a,
        channel="email",
    )
    company = CompanyFactory(workspace=workspace_a, name="Initrode")
    Customer.objects.filter(pk=customer_a.pk).update(company=company)
    team = TeamFactory(workspace=workspace_a, name="Hardware")
    customer = Actor.for_customer(customer_a)
    subjects = [
        ("Invoice shows the wrong VAT number", {"tags": ["billing"], "priority": "high"}),
        ("Scanner driver for macOS", {"assignee": alice, "team": team, "tags": ["hardware"]}),
        ("Cannot log in after password change", {"assignee": alice, "priority": "urgent"}),
        ("Feature request: dark mode", {"tags": ["feature-request"], "priority": "low"}),
    ]
    for subject, fields in subjects:
        ticket = ticket_create(
            workspace=workspace_a,
            actor=customer,
            subject=subject,
            body_text=f"Hello, {subject.lower()}. Thanks!",
            customer=customer_a,
            channel="email",
            **fields,
        )
        if fields.get("assignee"):
            comment_create(
                ticket=ticket,
                actor=Actor.for_agent(alice),
                body_text="Thanks, looking into it.",
            )
    ticket_update(ticket=ticket_a, actor=Actor.for_agent(bob), team=team, tags=["hardware"])
    comment_create(
        ticket=ticket_a,
        actor=Actor.for_agent(bob),
        body_text="Second time this month for this customer.",
        internal=True,
    )
    CannedReplyFactory(
        workspace=workspace_a,
        title="Technician on the way",
        body="Hello {{customer.first_name}}, a technician is on the way for #{{ticket.number}}.",
    )
    return {"ticket": ticket_a, "customer": customer_a, "team": team}


def test_sign_in_and_find_a_ticket_by_view_and_by_search(
    browser_context: Callable[..., BrowserContext], live_server: Any, helpdesk: dict[str, Any]
) -> None:
    page = browser_context().new_page()
    # A wrong password first: the form says so and stays.
    page.goto(f"{live_server.url}/login")
    page.get_by_label("Email").fill("alice@a.test")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Invalid email or password.")

    sign_in(page, live_server.url, "alice@a.test", PASSWORD)
    expect(page.get_by_role("heading", name="My open tickets")).to_be_visible()
    expect(page.locator(".ticket-row")).to_have_count(2)

    # Keyboard: j moves the cursor, ? opens the help.
    page.keyboard.press("j")
    expect(page.locator(".ticket-row").first).to_have_class(re.compile(r"\bis-cursor\b"))
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")

    # Through a view.
    sidebar = page.get_by_role("navigation", name="Views")
    sidebar.get_by_role("link", name="Unassigned").click()
    expect(page.get_by_role("heading", name="Unassigned")).to_be_visible()
    expect(page.get_by_role("link", name="Printer on fire")).to_be_visible()
    sidebar.get_by_role("link", name="All open").click()
    expect(page.locator(".ticket-row")).to_have_count(5)
    screenshot(page, "inbox")

    # Through search (the header's box searches every ticket).
    page.keyboard.press("/")
    page.keyboard.type("printer")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Results for “printer”")).to_be_visible()
    expect(page.locator(".ticket-row")).to_have_count(1)
    page.get_by_role("link", name="Printer on fire").click()
    expect(page.get_by_role("heading", name="Printer on fire")).to_be_visible()

    # The inbox on a phone.
    phone = browser_context(viewport={"width": 390, "height": 844}).new_page()
    sign_in(phone, live_server.url, "alice@a.test", PASSWORD)
    phone.goto(f"{live_server.url}/?view=open")
    expect(phone.locator(".ticket-row")).to_have_count(5)
    screenshot(phone, "inbox-phone", full_page=False)


def test_work_a_ticket(
    browser_context: Callable[..., BrowserContext],
    live_server: Any,
    helpdesk: dict[str, Any],
    bob: Agent,
) -> None:
    ticket: Ticket = helpdesk["ticket"]
    page = browser_context().new_page()
    sign_in(page, live_server.url, "alice@a.test", PASSWORD)
    page.goto(f"{live_server.url}/tickets/{ticket.number}")
    thread = page.locator("#thread")
    reply_box = page.locator("#reply-form")
    message = reply_box.get_by_label("Message")

    # Reply.
    message.fill("We are sending a technician this afternoon.")
    reply_box.get_by_role("button", name="Send reply").click()
    expect(thread.locator(".msg-agent").last).to_contain_text("We are sending a technician")
    expect(message).to_have_value("")

    # An internal note, by keyboard.
    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("n")
    expect(reply_box).to_have_class(re.compile(r"\bis-note\b"))
    expect(message).to_be_focused()
    page.keyboard.type("Check the warranty first.")
    reply_box.get_by_role("button", name="Add note").click()
    expect(thread.locator(".msg-note").last).to_contain_text("Check the warranty first.")

    # Assign and change the status from the side panel.
    panel = page.get_by_role("complementary", name="Ticket details")
    panel.get_by_label("Assignee").select_option(label="Bob Agent")
    expect(thread).to_contain_text("assigned the ticket to Bob Agent")
    panel.get_by_label("Status").select_option("pending")
    expect(page.locator("#ticket-header .badge")).to_have_text("Pending (waiting on customer)")

    # A canned reply, with its placeholders filled.
    reply_box.get_by_role("radio", name="Reply to customer").check()
    reply_box.get_by_text("Canned replies", exact=True).click()
    reply_box.get_by_role("button", name="Technician on the way").click()
    expect(message).to_have_value(f"Hello Carol, a technician is on the way for #{ticket.number}.")

    # An attachment, through the file picker; then send it all.
    reply_box.locator("[data-file-input]").set_input_files(
        {"name": "checklist.txt", "mimeType": "text/plain", "buffer": b"1. Unplug it.\n"}
    )
    expect(reply_box.locator(".upload")).to_contain_text("checklist.txt (")
    reply_box.get_by_role("button", name="Send reply").click()
    expect(thread.locator(".attachment")).to_contain_text("checklist.txt")
    expect(thread.locator(".msg-agent").last).to_contain_text("a technician is on the way")
    # The reply set the ticket open again? No: a reply keeps the status unless asked.
    expect(page.locator("#ticket-header .badge")).to_have_text("Pending (waiting on customer)")

    # Drag and drop a file onto the message, and send the note later (tomorrow, 09:30 in
    # the browser's own time zone).
    page.evaluate(
        """() => {
            const data = new DataTransfer();
            data.items.add(new File(["order 4711"], "order.txt", {type: "text/plain"}));
            const zone = document.querySelector("[data-dropzone]");
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true}));
        }"""
    )
    expect(reply_box.locator(".upload")).to_contain_text("order.txt (")
    message.fill("Follow up on the order.")
    reply_box.get_by_text("Send later", exact=True).click()
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    reply_box.get_by_label("Send at").fill(f"{tomorrow}T09:30")
    reply_box.get_by_role("button", name="Send reply").click()
    scheduled_row = thread.locator(".msg-scheduled")
    expect(scheduled_row).to_contain_text("Follow up on the order.")
    scheduled = ScheduledComment.objects.get(ticket=ticket)
    assert scheduled.send_at > timezone.now()
    assert [a.filename for a in scheduled.attachments.all()] == ["order.txt"]

    # Everything went through the services, with history.
    ticket.refresh_from_db()
    assert ticket.assignee_id == bob.pk
    assert ticket.status == "pending"
    comments = Comment.objects.filter(ticket=ticket, author_agent__user__email="alice@a.test")
    assert comments.filter(is_internal=False).count() == 2
    assert comments.filter(is_internal=True).count() == 1
    attachment = TicketAttachment.objects.get(filename="checklist.txt")
    assert attachment.comment.ticket_id == ticket.pk
    assert TicketEvent.objects.filter(ticket=ticket, field="assignee").exists()
    assert TicketEvent.objects.filter(ticket=ticket, kind=TicketEventKind.REPLIED).count() == 2
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "ticket")

    # "e" resolves, "a" goes to the assignee.
    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("e")
    expect(page.locator("#ticket-header .badge")).to_have_text("Resolved")
    page.keyboard.press("a")
    expect(panel.get_by_label("Assignee")).to_be_focused()
    page.keyboard.press("Escape")

    # The customer, from the panel.
    panel.get_by_role("link", name="Carol Customer").click()
    expect(page.get_by_role("heading", name="Carol Customer")).to_be_visible()
    expect(page.get_by_role("link", name="Printer on fire")).to_be_visible()
    screenshot(page, "customer")


def test_a_bulk_action_from_the_inbox(
    browser_context: Callable[..., BrowserContext],
    live_server: Any,
    helpdesk: dict[str, Any],
    bob: Agent,
) -> None:
    page = browser_context().new_page()
    sign_in(page, live_server.url, "alice@a.test", PASSWORD)
    page.goto(f"{live_server.url}/?view=unassigned")
    rows = page.locator(".ticket-row")
    expect(rows).to_have_count(3)
    assign = page.get_by_role("button", name="Assign", exact=True)
    expect(assign).to_be_disabled()
    page.get_by_label("Select all tickets on this page").check()
    expect(page.locator("[data-selected-count]")).to_have_text("3 selected")
    page.get_by_label("Assign to").select_option(label="Bob Agent")
    assign.click()
    expect(page.get_by_role("status").locator(".toast")).to_contain_text("Assigned 3 tickets.")
    expect(page.locator(".empty")).to_contain_text("Every ticket has an owner")
    assert Ticket.objects.filter(assignee=bob).count() == 3
