"""The rule editor and opening a ticket, in a real Chromium (Playwright).

An admin opens Settings → Automations, edits an automation (a condition's value, a new
action), saves, and runs the dry run of the edited rule against recent tickets. Leaves
test-artifacts/screenshots/settings-automation.png. Then an agent opens a ticket from the
inbox's "New ticket" button.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, expect

from automation.models import Automation
from automation.services import automation_create
from enque.tests.factories import TeamFactory
from tickets.actors import Actor
from tickets.models import Ticket
from tickets.services import ticket_create
from tickets.tests.api_support import use_memory_storage
from ui.tests.browser import screenshot, sign_in, ticket_hooks_muted
from workspaces.models import Agent, Customer, Workspace

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"  # enque.tests.factories.UserFactory's


@pytest.fixture(autouse=True)
def media(settings: Any) -> None:
    use_memory_storage(settings)


@pytest.fixture
def rules(
    chromium: Any, workspace_a: Workspace, alice: Agent, customer_a: Customer
) -> dict[str, Any]:
    with ticket_hooks_muted():
        customer = Actor.for_customer(customer_a)
        fire = ticket_create(
            workspace=workspace_a,
            actor=customer,
            subject="Smoke coming out of the printer",
            body_text="It smells of burnt toner.",
            customer=customer_a,
            channel="email",
        )
        ticket_create(
            workspace=workspace_a,
            actor=customer,
            subject="Invoice shows the wrong VAT number",
            body_text="Please correct it.",
            customer=customer_a,
            channel="email",
        )
        team = TeamFactory(workspace=workspace_a, name="Facilities")
        rule = automation_create(
            workspace=workspace_a,
            actor=alice,
            name="Fires are urgent",
            trigger="ticket_created",
            conditions=[{"field": "subject", "operator": "contains", "value": "flames"}],
            actions=[{"action_type": "set_priority", "params": {"priority": "urgent"}}],
        )
    return {"rule": rule, "team": team, "fire": fire}


def test_edit_an_automation_and_dry_run_it(
    browser_context: Callable[..., BrowserContext], live_server: Any, rules: dict[str, Any]
) -> None:
    rule: Automation = rules["rule"]
    fire: Ticket = rules["fire"]
    page = browser_context().new_page()
    sign_in(page, live_server.url, "alice@a.test", PASSWORD)

    # Settings → Automations & workflows → the rule.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    page.get_by_role("navigation", name="Settings").get_by_role(
        "link", name="Automations & workflows"
    ).click()
    expect(page.get_by_role("heading", name="Automations & workflows")).to_be_visible()
    page.get_by_role("link", name="Fires are urgent").click()
    expect(page.get_by_role("heading", name="Fires are urgent")).to_be_visible()

    # The condition's value: "flames" → "smoke".
    condition = page.locator("#conditions .rule-row").first
    condition.get_by_label("Value").fill("smoke")

    # A new action (fetched as a row by htmx), switched to "Set team" (redrawn by htmx).
    page.get_by_role("button", name="+ Add action").click()
    expect(page.locator("#actions .rule-row")).to_have_count(2)
    action = page.locator("#actions .rule-row").nth(1)
    action.get_by_label("Action", exact=True).select_option(label="Set team")
    expect(action.get_by_label("Team", exact=True)).to_be_visible()
    action.get_by_label("Team", exact=True).select_option(label="Facilities")

    # The dry run of the edited, unsaved rule: the smoking printer would match.
    page.get_by_role("button", name="Run dry run").click()
    result = page.locator("#dry-run-result")
    expect(result.locator("[data-dry-run-summary]")).to_contain_text("1 of 2")
    expect(result.locator(f'[data-dry-run-match="{fire.number}"]')).to_contain_text(
        "Smoke coming out of the printer"
    )
    expect(result).to_contain_text("Priority: normal → urgent")
    expect(result).to_contain_text("Team: none → Facilities")
    # Nothing changed yet: neither the ticket nor the stored rule.
    fire.refresh_from_db()
    assert (fire.priority, fire.team_id) == ("normal", None)
    assert rule.conditions.get().value == "flames"
    # A still of the whole page, from the top (the header is sticky).
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "settings-automation")

    # Save: the stored rule changed.
    page.get_by_role("button", name="Save automation").click()
    expect(page.locator("#toasts")).to_contain_text("Automation “Fires are urgent” saved.")
    rule.refresh_from_db()
    assert rule.conditions.get().value == "smoke"
    assert [(a.action_type, a.params) for a in rule.actions.all()] == [
        ("set_priority", {"priority": "urgent"}),
        ("set_team", {"team_id": rules["team"].pk}),
    ]

    # A wrong value is shown on its row, and nothing is saved.
    page.locator("#conditions .rule-row").first.get_by_label("Operator").select_option(
        label="matches (regular expression)"
    )
    # The row is redrawn for the operator (htmx): its value input says what it takes.
    expect(page.locator("#conditions .rule-row").first).to_contain_text("A regular expression.")
    page.locator("#conditions .rule-row").first.get_by_label("Value").fill("([")
    page.get_by_role("button", name="Save automation").click()
    expect(page.locator("#conditions .rule-row").first).to_contain_text(
        "Not a valid regular expression"
    )
    assert rule.conditions.get().value == "smoke"


def test_open_a_ticket_from_the_inbox(
    browser_context: Callable[..., BrowserContext],
    live_server: Any,
    rules: dict[str, Any],
    workspace_a: Workspace,
) -> None:
    page = browser_context().new_page()
    sign_in(page, live_server.url, "alice@a.test", PASSWORD)
    # "c" opens the new-ticket page, as the button does.
    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("c")
    expect(page.get_by_role("heading", name="New ticket")).to_be_visible()
    page.get_by_label("Subject").fill("Toner delivery")
    customer = page.get_by_label("Customer", exact=True)
    customer.fill("carol@customer.test")
    page.get_by_label("Message to the customer").fill("Hello Carol, the toner ships today.")
    page.get_by_label("Internal note").fill("Ordered from the usual supplier.")
    page.get_by_label("Priority").select_option("high")
    page.get_by_label("Team").select_option(label="Facilities")
    page.get_by_label("Tags").fill("toner")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "ticket-new")
    page.get_by_role("button", name="Open ticket").click()
    expect(page.get_by_role("heading", name="Toner delivery")).to_be_visible()
    thread = page.locator("#thread")
    expect(thread).to_contain_text("the toner ships today")
    expect(thread.locator(".msg-note")).to_contain_text("Ordered from the usual supplier.")
    ticket = Ticket.objects.get(workspace=workspace_a, subject="Toner delivery")
    assert (ticket.channel, ticket.priority, ticket.team.name) == ("web", "high", "Facilities")
    assert ticket.customer.email == "carol@customer.test"

    # Rename it inline.
    page.get_by_text("Edit subject").click()
    page.get_by_role("textbox", name="Subject").fill("Toner delivery (2 cartridges)")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("heading", name="Toner delivery (2 cartridges)")).to_be_visible()
    ticket.refresh_from_db()
    assert ticket.subject == "Toner delivery (2 cartridges)"
    screenshot(page, "ticket-renamed", full_page=False)
