"""The dashboard in a real Chromium: the hand-built week of ``tickets.tests.analytics_data``
shows its known figures in the tiles, the chart and the chart's table; the metric picker
redraws the chart. Leaves test-artifacts/screenshots/dashboard.png."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, expect

from tickets.tests.analytics_data import build_noise, build_week
from ui.tests.browser import screenshot, sign_in, ticket_hooks_muted
from workspaces.models import Agent, Workspace

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"  # enque.tests.factories.UserFactory's
QUERY = "start=2026-01-05&end=2026-01-11"


@pytest.fixture
def week(
    chromium: Any, workspace_a: Workspace, workspace_b: Workspace, alice: Agent, bob: Agent
) -> None:
    with ticket_hooks_muted():
        build_week(workspace_a, alice, bob)
        build_noise(workspace_b)


def test_the_dashboard_shows_the_weeks_numbers(
    browser_context: Callable[..., BrowserContext], live_server: Any, week: None
) -> None:
    page = browser_context().new_page()
    sign_in(page, live_server.url, "alice@a.test", PASSWORD)
    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    page.goto(f"{live_server.url}/dashboard?{QUERY}")

    def tile(key: str) -> Any:
        return page.locator(f'[data-tile="{key}"] .tile-value')

    expect(tile("created")).to_have_text("4")
    expect(tile("resolved")).to_have_text("3")
    expect(tile("backlog")).to_have_text("3")
    expect(tile("first_response")).to_have_text("30 min")
    expect(tile("resolution")).to_have_text("1 d 19 h")
    expect(tile("one_touch")).to_have_text("66.67 %")

    chart = page.locator("#timeseries svg[data-chart='created']")
    expect(chart).to_be_visible()
    # Three days with tickets: three bars, Monday's twice as tall as Tuesday's.
    bars = chart.locator("rect.chart-bar")
    expect(bars).to_have_count(3)
    heights = [float(bars.nth(i).get_attribute("height") or 0) for i in range(3)]
    assert heights[0] == pytest.approx(2 * heights[1])
    page.locator("#timeseries summary").click()
    rows = page.locator("#timeseries table tbody tr")
    expect(rows).to_have_count(7)
    expect(rows.nth(0)).to_contain_text("Jan 5")
    expect(rows.nth(0).locator("td")).to_have_text("2")
    expect(rows.nth(6).locator("td")).to_have_text("1")

    heat = page.locator("#heatmap svg rect.heat-cell:not(.heat-empty)")
    expect(heat).to_have_count(4)
    expect(page.locator("#agent-table tbody tr")).to_have_count(3)
    expect(page.locator("#team-table tbody tr", has_text="Support")).to_contain_text("2")
    screenshot(page, "dashboard")

    # The metric picker submits itself: the chart becomes the backlog.
    page.get_by_label("Metric").select_option("backlog")
    expect(page.locator("#timeseries svg[data-chart='backlog']")).to_be_visible()
    page.locator("#timeseries summary").click()
    expect(page.locator("#timeseries table tbody tr").nth(2).locator("td")).to_have_text("2")
    expect(tile("created")).to_have_text("4")  # the filters came along
