"""UI test helpers: signed-in Django test clients for the tenant trio (enque/fixtures.py).

``signed_in(agent)`` is a client whose session carries the agent's user and workspace,
exactly as the sign-in page leaves it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from django.test import Client

from enque.testing import require_service
from ui.session import SESSION_WORKSPACE_KEY
from workspaces.models import Agent

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage


def sign_in(client: Client, agent: Agent) -> Client:
    client.force_login(agent.user)
    session = client.session
    session[SESSION_WORKSPACE_KEY] = agent.workspace_id
    session.save()
    return client


@pytest.fixture
def signed_in() -> Callable[[Agent], Client]:
    def make(agent: Agent, *, enforce_csrf_checks: bool = False) -> Client:
        return sign_in(Client(enforce_csrf_checks=enforce_csrf_checks), agent)

    return make


@pytest.fixture
def alice_client(signed_in: Callable[[Agent], Client], alice: Agent) -> Client:
    return signed_in(alice)


@pytest.fixture
def bob_client(signed_in: Callable[[Agent], Client], bob: Agent) -> Client:
    return signed_in(bob)


@pytest.fixture
def charlie_client(signed_in: Callable[[Agent], Client], charlie: Agent) -> Client:
    return signed_in(charlie)


# --- Browser tests (ui/tests/browser.py) ---------------------------------------------------


@pytest.fixture(scope="module")
def chromium(django_db_setup: None) -> Iterator[Browser]:
    """One Chromium per browser-test module (each test gets its own context).

    Playwright's sync API keeps its event loop registered as running on this thread for as
    long as it is started, which Django's async-safety check mistakes for async code
    calling the ORM. The check is lifted for exactly that lifetime (the test's own ORM calls
    are synchronous), and the module scope ends it before any other test module runs: a
    session-wide browser would leave the loop "running" under every later test.
    """
    from ui.tests.browser import CHROMIUM, CHROMIUM_ARGS

    require_service(
        "chromium",
        CHROMIUM.exists(),
        f"no Chromium at {CHROMIUM} (apt-get install chromium, or set ENQUE_CHROMIUM)",
    )
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def browser_context(chromium: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """``browser_context()``: a fresh context (cookies, storage), closed after the test."""
    from ui.tests.browser import TIMEOUT_MS

    contexts: list[BrowserContext] = []
    # Every page must work under the site's Content-Security-Policy (enque/settings.py):
    # a violation is a test failure, not a console line nobody reads.
    violations: list[str] = []
    page_errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    def make(**options: object) -> BrowserContext:
        options.setdefault("viewport", {"width": 1360, "height": 860})
        context = chromium.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        context.on("console", on_console)
        context.on("weberror", lambda error: page_errors.append(str(error.error)))
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()
    assert not violations, violations
    assert not page_errors, page_errors
