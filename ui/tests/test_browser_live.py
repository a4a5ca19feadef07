"""Live updates in a real Chromium, over the realtime websocket of a real ASGI server.

Alice and Bob each sign in to uvicorn (ui/tests/browser.py: AsgiServer) with their own
browser context. Bob opening and typing on a ticket shows on Alice's page ("Bob Agent is
viewing / typing"); a reply made through the REST API appears in her open page without a
reload; a ticket created through the API is announced in her inbox.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.auth.hashers import make_password
from playwright.sync_api import BrowserContext, expect

from enque.api.authentication import issue_tokens
from enque.testing import require_redis
from tickets.actors import Actor
from tickets.models import Ticket
from tickets.services import ticket_create
from ui.tests.browser import AsgiServer, screenshot, sign_in, ticket_hooks_muted
from workspaces.models import Agent, Customer, Workspace

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"  # enque.tests.factories.UserFactory's


@pytest.fixture
def ticket(chromium: Any, workspace_a: Workspace, customer_a: Customer) -> Ticket:
    with ticket_hooks_muted():
        return ticket_create(
            workspace=workspace_a,
            actor=Actor.for_customer(customer_a),
            subject="Printer on fire",
            body_text="Our printer is on fire again. Please help.",
            customer=customer_a,
            channel="email",
        )


@pytest.fixture
def server(tmp_path: Path, ticket: Ticket, alice: Agent, bob: Agent) -> Iterator[AsgiServer]:
    # Presence lives in Redis (and the channel layer must reach the server's sockets).
    require_redis()
    # The suite hashes passwords with MD5 for speed; the server, not under pytest, does not
    # accept that hasher: give its users a hash it knows.
    for agent in (alice, bob):
        agent.user.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
        agent.user.save(update_fields=["password"])
    asgi = AsgiServer(tmp_path)
    try:
        asgi.wait_ready()
        yield asgi
    finally:
        asgi.stop()


def api(server: AsgiServer, agent: Agent, method: str, path: str, body: dict[str, Any]) -> Any:
    response = requests.request(
        method,
        f"{server.url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {issue_tokens(agent)['access']}"},
        timeout=10,
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_presence_and_a_reply_through_the_api_appear_live(
    browser_context: Callable[..., BrowserContext],
    server: AsgiServer,
    ticket: Ticket,
    alice: Agent,
    bob: Agent,
) -> None:
    alice_page = browser_context().new_page()
    sign_in(alice_page, server.url, "alice@a.test", PASSWORD)
    alice_page.goto(f"{server.url}/tickets/{ticket.number}")
    expect(alice_page.locator(f'html[data-subscribed~="ticket:{ticket.number}"]')).to_be_attached()
    # A marker that a reload would wipe.
    alice_page.evaluate("window.stillTheSamePage = true")

    bob_page = browser_context().new_page()
    sign_in(bob_page, server.url, "bob@a.test", PASSWORD)
    bob_page.goto(f"{server.url}/tickets/{ticket.number}")

    presence = alice_page.locator("#presence")
    expect(presence).to_contain_text("Bob Agent is viewing")
    bob_page.locator("#reply-form textarea").press_sequentially("Hello Ca", delay=30)
    expect(presence).to_contain_text("Bob Agent is typing")

    api(
        server,
        bob,
        "POST",
        f"/v1/tickets/{ticket.number}/reply",
        {"body": "A technician is on the way (sent through the API)."},
    )
    expect(alice_page.locator("#thread")).to_contain_text("sent through the API")
    assert alice_page.evaluate("window.stillTheSamePage") is True

    bob_page.close()
    expect(presence).to_be_hidden()


def test_a_new_ticket_is_announced_in_the_inbox(
    browser_context: Callable[..., BrowserContext],
    server: AsgiServer,
    alice: Agent,
    bob: Agent,
    customer_a: Customer,
) -> None:
    page = browser_context().new_page()
    sign_in(page, server.url, "alice@a.test", PASSWORD)
    page.goto(f"{server.url}/?view=open")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "online")
    # Subscribed (acknowledged by the server) before the event is caused.
    expect(page.locator('html[data-subscribed~="tickets"]')).to_be_attached()
    expect(page.locator(".ticket-row")).to_have_count(1)

    api(
        server,
        bob,
        "POST",
        "/v1/tickets",
        {"subject": "Coffee machine leaking", "body": "Puddle.", "customer_id": customer_a.pk},
    )
    banner = page.locator("#live-banner")
    expect(banner).to_contain_text("1 new ticket")
    banner.get_by_role("button").click()
    expect(page.locator(".ticket-row")).to_have_count(2)
    expect(page.get_by_role("link", name="Coffee machine leaking")).to_be_visible()
    expect(banner).to_be_hidden()
    # The sidebar's counts followed (debounced).
    expect(page.locator('.view-link[data-view="open"] .count')).to_have_text("2")
    screenshot(page, "inbox-live", full_page=False)
