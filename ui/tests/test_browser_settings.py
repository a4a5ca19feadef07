"""The settings pages in a real Chromium: an admin opens Settings from the top navigation,
creates a tag and a team, changes an agent's role, and deletes a tag through the
confirmation. Leaves test-artifacts/screenshots/settings.png (and settings-phone.png)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Dialog, expect

from tickets.models import Tag
from ui.tests.browser import screenshot, sign_in
from workspaces.models import Agent, AgentRole, Team

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"  # enque.tests.factories.UserFactory's


# Eight pages and two sign-ins: more than the default 120 s on a loaded two-core machine.
@pytest.mark.timeout(300)
def test_an_admin_manages_tags_teams_and_roles(
    browser_context: Callable[..., BrowserContext],
    live_server: Any,
    chromium: Any,
    alice: Agent,
    bob: Agent,
) -> None:
    page = browser_context().new_page()
    sign_in(page, live_server.url, "alice@a.test", PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="General")).to_be_visible()
    expect(page.get_by_label("Workspace name")).to_have_value("Acme Support")
    settings_nav = page.get_by_role("navigation", name="Settings")

    # A tag, with a colour; a bad colour first is refused inline.
    settings_nav.get_by_role("link", name="Tags").click()
    expect(page.get_by_role("heading", name="Tags", exact=True)).to_be_visible()
    expect(page.get_by_text("No tags yet")).to_be_visible()
    page.get_by_label("Name").fill("vip")
    page.get_by_label("Colour").fill("blue")
    page.get_by_role("button", name="Add tag").click()
    expect(page.get_by_text("A colour is a hex code such as #3b82f6.")).to_be_visible()
    expect(page.get_by_label("Colour")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Colour").fill("#e11d48")
    page.get_by_role("button", name="Add tag").click()
    expect(page.get_by_role("status").get_by_text("Tag vip added.")).to_be_visible()
    expect(page.get_by_role("list", name="Tags").locator(".tag")).to_have_text(["vip"])
    tag = Tag.objects.get()
    assert tag.color == "#e11d48"

    # A team with both agents.
    settings_nav.get_by_role("link", name="Teams").click()
    expect(page.get_by_role("heading", name="Teams", exact=True)).to_be_visible()
    page.get_by_label("Name").fill("Hardware")
    page.get_by_label(re.compile(r"Alice Admin")).check()
    page.get_by_label(re.compile(r"Bob Agent")).check()
    page.get_by_role("button", name="Create team").click()
    expect(page.get_by_role("status").get_by_text("Team Hardware created.")).to_be_visible()
    row = page.get_by_role("table", name="Teams").get_by_role("row", name=re.compile("Hardware"))
    expect(row).to_contain_text("Bob Agent")
    team = Team.objects.get()
    assert set(team.members.values_list("pk", flat=True)) == {alice.pk, bob.pk}

    # Bob becomes a light agent: the select submits on change.
    settings_nav.get_by_role("link", name="Agents").click()
    expect(page.get_by_role("heading", name="Agents", exact=True)).to_be_visible()
    page.get_by_label("Role of Bob Agent").select_option("light")
    expect(page.get_by_role("status").get_by_text("Bob Agent is now light agent.")).to_be_visible()
    expect(page.get_by_label("Role of Bob Agent")).to_have_value("light")
    bob.refresh_from_db()
    assert bob.role == AgentRole.LIGHT
    # An admin is not offered the owner role, and cannot touch the owner's row.
    expect(page.get_by_label("Role of Bob Agent").locator("option[value=owner]")).to_have_count(0)
    expect(page.get_by_label("Role of Olivia Owner")).to_have_count(0)
    screenshot(page, "settings")

    # Deleting asks first: dismissed, nothing happens; accepted, the tag is gone.
    settings_nav.get_by_role("link", name="Tags").click()
    expect(page.get_by_role("heading", name="Tags", exact=True)).to_be_visible()
    answers = iter([False, True])

    def answer(dialog: Dialog) -> None:
        assert "Delete the tag vip?" in dialog.message
        if next(answers):
            dialog.accept()
        else:
            dialog.dismiss()

    page.on("dialog", answer)
    delete = page.get_by_role("button", name="Delete vip")
    delete.click()
    expect(page.get_by_role("list", name="Tags")).to_be_visible()
    assert Tag.objects.exists()
    delete.click()
    expect(page.get_by_text("No tags yet")).to_be_visible()
    assert not Tag.objects.exists()

    # The settings on a phone: the section list stacks above the page.
    phone = browser_context(viewport={"width": 390, "height": 844}).new_page()
    sign_in(phone, live_server.url, "alice@a.test", PASSWORD)
    phone.goto(f"{live_server.url}/settings/agents")
    expect(phone.get_by_role("heading", name="Agents")).to_be_visible()
    expect(phone.get_by_label("Role of Bob Agent")).to_be_visible()
    screenshot(phone, "settings-phone", full_page=False)


def test_a_plain_agent_has_no_settings(
    browser_context: Callable[..., BrowserContext], live_server: Any, chromium: Any, bob: Agent
) -> None:
    page = browser_context().new_page()
    sign_in(page, live_server.url, "bob@a.test", PASSWORD)
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings")
    ).to_have_count(0)
    response = page.goto(f"{live_server.url}/settings/tags")
    assert response is not None and response.status == 404
