"""No list costs a query per row: every /v1 list and every UI list page, at two sizes.

Each list is read with 3 rows and again with 30 (more than a page of 25, so the page is
full), and must issue exactly as many queries both times: a query per row (an N+1) shows up
as 27 more. The lists are discovered, not listed by hand, so a new one cannot escape:

- **/v1**: every route whose GET action is ``list``, or one of its viewset's
  ``paginated_actions`` (a ticket's comments, a customer's tickets...), or in
  ``EXTRA_API_LISTS``; each needs a row maker in ``API_LISTS``
  (``test_every_api_list_is_covered`` names the ones without).
- **UI**: every page of the ``ui`` namespace without path arguments whose name, past a
  ``settings_`` prefix, is a plural (``customers``, ``settings_teams``...), plus
  ``UI_EXTRA_LISTS``, minus ``UI_NOT_LISTS``; each needs a row maker in ``UI_LISTS``.

The inbox and the ticket page (issue #7: bounded at 100,000 tickets) are also measured here
at two sizes, and at 100,000 tickets by ``bench/run.py --only ui --size 100000``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import time, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from rest_framework.test import APIClient

from automation import services as automation_services
from automation.models import AutomationRun, Notification, NotificationKind
from enque.tests.factories import (
    AgentFactory,
    CannedReplyFactory,
    CategoryFactory,
    CompanyFactory,
    CustomerFactory,
    TagFactory,
    TeamFactory,
    WorkspaceFactory,
)
from integrations.models import MailboxConnection
from tickets import services as ticket_services
from tickets.actors import Actor
from tickets.models import Ticket
from workspaces.models import Agent, Customer, TeamMembership, Workspace

pytestmark = pytest.mark.django_db

SMALL, LARGE = 3, 30


# --- Rows --------------------------------------------------------------------------------


def tickets(workspace: Workspace, n: int, *, customer: Customer | None = None) -> list[Ticket]:
    """``n`` tickets through the service, each with every embedded object set: customer
    (with a company), assignee, team, category and two tags."""
    agent = Agent.objects.for_workspace(workspace).select_related("user").first()
    team = TeamFactory(workspace=workspace)
    category = CategoryFactory(workspace=workspace)
    if customer is None:
        customer = CustomerFactory(workspace=workspace, company=CompanyFactory(workspace=workspace))
    made = []
    for i in range(n):
        made.append(
            ticket_services.ticket_create(
                workspace=workspace,
                actor=Actor.for_customer(customer),
                subject=f"Printer {i} on fire",
                customer=customer,
                body_text="The toner burst.",
                channel="email",
                assignee=agent,
                team=team,
                category=category,
                tags=[f"tag{i % 3}", "common"],
            )
        )
    return made


def comments(ticket: Ticket, n: int) -> None:
    """``n`` thread entries alternating customer replies, agent replies and notes."""
    agent = Agent.objects.for_workspace(ticket.workspace_id).select_related("user").first()
    for i in range(n):
        actor = Actor.for_customer(ticket.customer) if i % 3 == 0 else Actor.for_agent(agent)
        ticket_services.comment_create(
            ticket=ticket, actor=actor, body_text=f"Message {i}", internal=i % 3 == 2
        )


def one_ticket(workspace: Workspace) -> Ticket:
    existing = Ticket.objects.for_workspace(workspace).first()
    return existing or tickets(workspace, 1)[0]


def admin_of(workspace: Workspace) -> Agent:
    return Agent.objects.for_workspace(workspace).filter(role__in=["owner", "admin"]).first()


# --- /v1 lists -----------------------------------------------------------------------------

# A maker adds n rows to the list and returns its URL (the same URL for both sizes).
Maker = Callable[[Workspace, Agent, int], str]


def _workspaces(ws: Workspace, alice: Agent, n: int) -> str:
    for _ in range(n):
        AgentFactory(workspace=WorkspaceFactory(), user=alice.user)
    return "/v1/workspaces"


def _agents(ws: Workspace, alice: Agent, n: int) -> str:
    for _ in range(n):
        team = TeamFactory(workspace=ws)
        agent = AgentFactory(workspace=ws)
        TeamMembership.objects.create(workspace=ws, team=team, agent=agent)
    return "/v1/agents"


def _teams(ws: Workspace, alice: Agent, n: int) -> str:
    for _ in range(n):
        team = TeamFactory(workspace=ws)
        TeamMembership.objects.create(workspace=ws, team=team, agent=AgentFactory(workspace=ws))
    return "/v1/teams"


def _customers(ws: Workspace, alice: Agent, n: int) -> str:
    for _ in range(n):
        CustomerFactory(workspace=ws, company=CompanyFactory(workspace=ws))
    return "/v1/customers"


def _customer_tickets(ws: Workspace, alice: Agent, n: int) -> str:
    customer = Customer.objects.for_workspace(ws).filter(email="many@tickets.test").first()
    customer = customer or CustomerFactory(workspace=ws, email="many@tickets.test")
    tickets(ws, n, customer=customer)
    return f"/v1/customers/{customer.pk}/tickets"


def _companies(ws: Workspace, alice: Agent, n: int) -> str:
    for _ in range(n):
        company = CompanyFactory(workspace=ws)
        CustomerFactory(workspace=ws, company=company)
    return "/v1/companies"


def _the_company(ws: Workspace) -> Any:
    from workspaces.models import Company

    company = Company.objects.for_workspace(ws).filter(name="Many Rows Ltd").first()
    return company or CompanyFactory(workspace=ws, name="Many Rows Ltd")


def _company_customers(ws: Workspace, alice: Agent, n: int) -> str:
    company = _the_company(ws)
    for _ in range(n):
        CustomerFactory(workspace=ws, company=company)
    return f"/v1/companies/{company.pk}/customers"


def _company_tickets(ws: Workspace, alice: Agent, n: int) -> str:
    company = _the_company(ws)
    tickets(ws, n, customer=CustomerFactory(workspace=ws, company=company))
    return f"/v1/companies/{company.pk}/tickets"


def _signatures(ws: Workspace, alice: Agent, n: int) -> str:
    for _ in range(n):
        AgentFactory(workspace=ws)
    return "/v1/signatures"


def _factory_rows(factory: Any, url: str) -> Maker:
    def make(ws: Workspace, alice: Agent, n: int) -> str:
        for _ in range(n):
            factory(workspace=ws)
        return url

    return make


def _tickets(ws: Workspace, alice: Agent, n: int) -> str:
    tickets(ws, n)
    return "/v1/tickets"


def _ticket_comments(ws: Workspace, alice: Agent, n: int) -> str:
    ticket = one_ticket(ws)
    comments(ticket, n)
    return f"/v1/tickets/{ticket.number}/comments"


def _ticket_events(ws: Workspace, alice: Agent, n: int) -> str:
    ticket = one_ticket(ws)
    comments(ticket, n)  # each entry records a history event
    return f"/v1/tickets/{ticket.number}/events"


def _scheduled(ws: Workspace, alice: Agent, n: int) -> str:
    ticket = one_ticket(ws)
    for i in range(n):
        ticket_services.comment_schedule(
            ticket=ticket,
            actor=Actor.for_agent(alice),
            send_at=timezone.now() + timedelta(days=1, minutes=i),
            body_text=f"Later {i}",
        )
    return "/v1/scheduled-comments"


def _saved_views(ws: Workspace, alice: Agent, n: int) -> str:
    for i in range(n):
        ticket_services.saved_view_create(
            workspace=ws,
            agent=alice,
            name=f"View {i} {timezone.now().timestamp()}",
            filters={"status": ["open"], "q": "printer"},
        )
    return "/v1/views"


def _saved_view_tickets(ws: Workspace, alice: Agent, n: int) -> str:
    from tickets.models import SavedView

    view = SavedView.objects.for_workspace(ws).filter(name="Everything").first()
    view = view or ticket_services.saved_view_create(
        workspace=ws, agent=alice, name="Everything", filters={}
    )
    tickets(ws, n)
    return f"/v1/views/{view.pk}/tickets"


def _export(ws: Workspace, alice: Agent, n: int) -> str:
    tickets(ws, n)
    return "/v1/export/tickets"


def _workflows(ws: Workspace, alice: Agent, n: int) -> str:
    for i in range(n):
        workflow = automation_services.workflow_create(
            workspace=ws, actor=alice, name=f"Flow {i} {timezone.now().timestamp()}",
            trigger="ticket_created",
        )  # fmt: skip
        _automation(ws, alice, i, workflow=workflow)
    return "/v1/workflows"


def _automation(ws: Workspace, alice: Agent, i: int, workflow: Any = None) -> Any:
    return automation_services.automation_create(
        workspace=ws,
        actor=alice,
        name=f"Rule {i} {timezone.now().timestamp()}",
        trigger="ticket_created",
        conditions=[{"field": "subject", "operator": "contains", "value": "printer"}],
        actions=[{"action_type": "add_tags", "params": {"tags": ["printer"]}}],
        workflow=workflow,
    )


def _automations(ws: Workspace, alice: Agent, n: int) -> str:
    for i in range(n):
        _automation(ws, alice, i)
    return "/v1/automations"


def _automation_runs(ws: Workspace, alice: Agent, n: int) -> str:
    from automation.models import Automation

    rule = Automation.objects.for_workspace(ws).filter(name__startswith="Runs").first()
    if rule is None:
        rule = _automation(ws, alice, 0)
        rule.name = "Runs"
        rule.save(update_fields=["name"])
    for ticket in tickets(ws, n):
        AutomationRun.objects.create(
            workspace=ws, automation=rule, ticket=ticket, trigger="ticket_created"
        )
    return f"/v1/automations/{rule.pk}/runs"


def _business_hours(ws: Workspace, alice: Agent, n: int) -> str:
    for i in range(n):
        automation_services.business_hours_create(
            workspace=ws,
            actor=alice,
            name=f"Hours {i} {timezone.now().timestamp()}",
            slots=[{"weekday": d, "opens_at": time(9), "closes_at": time(17)} for d in range(5)],
        )
    return "/v1/business-hours"


def _sla_policies(ws: Workspace, alice: Agent, n: int) -> str:
    for i in range(n):
        automation_services.sla_policy_create(
            workspace=ws,
            actor=alice,
            name=f"SLA {i} {timezone.now().timestamp()}",
            targets=[
                {"priority": p, "first_response_minutes": 60, "resolution_minutes": 480}
                for p in ("low", "normal", "high", "urgent")
            ],
        )
    return "/v1/sla-policies"


def _macros(ws: Workspace, alice: Agent, n: int) -> str:
    for i in range(n):
        automation_services.macro_create(
            workspace=ws,
            actor=alice,
            name=f"Macro {i} {timezone.now().timestamp()}",
            actions=[{"action_type": "set_status", "params": {"status": "pending"}}],
            canned_reply=CannedReplyFactory(workspace=ws),
            shared=True,
        )
    return "/v1/macros"


def _notifications(ws: Workspace, alice: Agent, n: int) -> str:
    for ticket in tickets(ws, n):
        Notification.objects.create(
            workspace=ws, recipient=alice, kind=NotificationKind.ASSIGNED, ticket=ticket
        )
    return "/v1/notifications"


def _mailboxes(ws: Workspace, alice: Agent, n: int) -> str:
    stamp = int(timezone.now().timestamp() * 1e6)
    for i in range(n):
        MailboxConnection.objects.create(
            workspace=ws,
            provider="imap",
            email_address=f"support{stamp}-{i}@a.test",
            default_team=TeamFactory(workspace=ws),
        )
    return "/v1/mailboxes"


API_LISTS: dict[str, Maker] = {
    "workspace-list": _workspaces,
    "people-agent-list": _agents,
    "team-list": _teams,
    "customer-list": _customers,
    "customer-tickets": _customer_tickets,
    "company-list": _companies,
    "company-customers": _company_customers,
    "company-tickets": _company_tickets,
    "signature-list": _signatures,
    "category-list": _factory_rows(CategoryFactory, "/v1/categories"),
    "tag-list": _factory_rows(TagFactory, "/v1/tags"),
    "canned-reply-list": _factory_rows(CannedReplyFactory, "/v1/canned-replies"),
    "ticket-list": _tickets,
    "ticket-comments": _ticket_comments,
    "ticket-events": _ticket_events,
    "scheduled-comment-list": _scheduled,
    "saved-view-list": _saved_views,
    "saved-view-tickets": _saved_view_tickets,
    "export-tickets": _export,
    "workflow-list": _workflows,
    "automation-list": _automations,
    "automation-runs": _automation_runs,
    "business-hours-list": _business_hours,
    "sla-policy-list": _sla_policies,
    "macro-list": _macros,
    "notification-list": _notifications,
    "mailbox-list": _mailboxes,
}
# Lists that the rule below cannot see: the export stream's pages.
EXTRA_API_LISTS = frozenset({"export-tickets"})


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def api_list_routes() -> list[str]:
    names = []
    for path, pattern in _walk(get_resolver().url_patterns):
        if not path.startswith("v1/"):
            continue
        actions = getattr(pattern.callback, "actions", None) or {}
        viewset = getattr(pattern.callback, "cls", None)
        action = actions.get("get")
        paginated = getattr(viewset, "paginated_actions", None) or frozenset()
        if action == "list" or action in paginated or pattern.name in EXTRA_API_LISTS:
            names.append(pattern.name or path)
    return sorted(set(names))


def items(body: Any) -> list[Any]:
    """The rows of a list answer: ``results`` of a page, the list itself, or the longest list
    in the object (``/v1/signatures`` answers ``{"workspace": ..., "agents": [...]}``)."""
    if isinstance(body, list):
        return body
    if "results" in body:
        return body["results"]
    lists = [value for value in body.values() if isinstance(value, list)]
    return max(lists, key=len) if lists else []


def api_queries(client: APIClient, url: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.content[:500])
    return len(captured), len(items(response.json()))


def test_every_api_list_is_covered() -> None:
    uncovered = [name for name in api_list_routes() if name not in API_LISTS]
    assert not uncovered, f"add a row maker to API_LISTS for: {uncovered}"
    stale = [name for name in API_LISTS if name not in api_list_routes()]
    assert not stale, f"API_LISTS names routes that are not lists any more: {stale}"


@pytest.mark.parametrize("route", sorted(API_LISTS))
def test_api_list_query_count_does_not_grow(
    route: str,
    workspace_a: Workspace,
    alice: Agent,
    client_for: Callable[[Agent], APIClient],
    settings: Any,
) -> None:
    settings.RATELIMIT_ENABLE = False
    settings.TICKET_EXPORT_SETTLE_SECONDS = 0  # the export holds back the last seconds' changes
    client = client_for(alice)
    url = API_LISTS[route](workspace_a, alice, SMALL)
    small, small_rows = api_queries(client, url)
    API_LISTS[route](workspace_a, alice, LARGE - SMALL)
    large, large_rows = api_queries(client, url)
    assert large_rows > small_rows >= SMALL, (route, small_rows, large_rows)
    assert large == small, (
        f"{url}: {small} queries with {small_rows} rows, {large} with {large_rows}"
    )


# --- UI list pages ---------------------------------------------------------------------

UiMaker = Callable[[Workspace, Agent, int], None]


def _ui_tickets(ws: Workspace, alice: Agent, n: int) -> None:
    tickets(ws, n)


def _ui_agents(ws: Workspace, alice: Agent, n: int) -> None:
    _agents(ws, alice, n)


def _ui_rows(factory: Any) -> UiMaker:
    def make(ws: Workspace, alice: Agent, n: int) -> None:
        for _ in range(n):
            factory(workspace=ws)

    return make


def _ui_companies(ws: Workspace, alice: Agent, n: int) -> None:
    for _ in range(n):
        company = CompanyFactory(workspace=ws)
        customer = CustomerFactory(workspace=ws, company=company)
        tickets(ws, 1, customer=customer)


def _ui_customers(ws: Workspace, alice: Agent, n: int) -> None:
    for _ in range(n):
        customer = CustomerFactory(workspace=ws, company=CompanyFactory(workspace=ws))
        tickets(ws, 1, customer=customer)


def _ui_teams(ws: Workspace, alice: Agent, n: int) -> None:
    _teams(ws, alice, n)


def _ui_mailboxes(ws: Workspace, alice: Agent, n: int) -> None:
    _mailboxes(ws, alice, n)


def _ui_deleted(ws: Workspace, alice: Agent, n: int) -> None:
    for ticket in tickets(ws, n):
        ticket_services.ticket_delete(ticket=ticket, actor=Actor.for_agent(alice))


def _ui_automations(ws: Workspace, alice: Agent, n: int) -> None:
    _workflows(ws, alice, n)
    _automations(ws, alice, n)


def _ui_sla(ws: Workspace, alice: Agent, n: int) -> None:
    _sla_policies(ws, alice, n)
    _business_hours(ws, alice, n)


UI_LISTS: dict[str, UiMaker] = {
    "inbox": _ui_tickets,
    "inbox_counts": _ui_tickets,
    "customers": _ui_customers,
    "ticket_new_customers": _ui_rows(CustomerFactory),
    "tickets_deleted": _ui_deleted,
    "companies": _ui_companies,
    "settings_agents": _ui_agents,
    "settings_teams": _ui_teams,
    "settings_categories": _ui_rows(CategoryFactory),
    "settings_tags": _ui_rows(TagFactory),
    "settings_canned_replies": _ui_rows(CannedReplyFactory),
    "settings_automations": _ui_automations,
    "settings_mailboxes": _ui_mailboxes,
    "settings_sla": _ui_sla,
}
# Query strings that make a page list its rows.
UI_LIST_QUERY = {"inbox": "?view=all", "ticket_new_customers": "?customer=customer"}
# Pages that list although their name is not a plural.
UI_EXTRA_LISTS = frozenset({"inbox", "settings_sla", "tickets_deleted"})
# Plural-named routes that are not list pages.
UI_NOT_LISTS = frozenset({"settings"})  # the settings home: links to the sections
_PLURAL = re.compile(r"(s|ies)$")
# Downloads, not pages: the analytics CSVs are aggregates (a fixed number of queries,
# ui/tests/test_dashboard.py), whatever their names say.
_DOWNLOAD = re.compile(r"_csv(_|$)")


def ui_list_routes() -> list[str]:
    _prefix, ui = get_resolver().namespace_dict["ui"]
    names = []
    for _path, pattern in _walk(ui.url_patterns):
        if not pattern.name or pattern.pattern.regex.groupindex:
            continue
        stem = pattern.name.removeprefix("settings_")
        if pattern.name in UI_EXTRA_LISTS or (
            _PLURAL.search(stem)
            and not _DOWNLOAD.search(pattern.name)
            and pattern.name not in UI_NOT_LISTS
        ):
            names.append(pattern.name)
    return sorted(set(names))


def signed_in(agent: Agent) -> Client:
    from ui.session import SESSION_WORKSPACE_KEY

    client = Client()
    client.force_login(agent.user)
    session = client.session
    session[SESSION_WORKSPACE_KEY] = agent.workspace_id
    session.save()
    return client


def ui_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(captured)


def test_every_ui_list_page_is_covered() -> None:
    routes = ui_list_routes()
    uncovered = [name for name in routes if name not in UI_LISTS]
    assert not uncovered, (
        f"add a row maker to UI_LISTS (or the name to UI_NOT_LISTS) for: {uncovered}"
    )
    stale = [name for name in UI_LISTS if name not in routes]
    assert not stale, f"UI_LISTS names pages that are not there any more: {stale}"


@pytest.mark.parametrize("name", sorted(UI_LISTS))
def test_ui_list_query_count_does_not_grow(
    name: str, workspace_a: Workspace, alice: Agent, settings: Any
) -> None:
    if name not in ui_list_routes():
        pytest.fail(f"{name} is not a UI list page any more: remove it from UI_LISTS")
    client = signed_in(alice)
    url = reverse(f"ui:{name}") + UI_LIST_QUERY.get(name, "")
    UI_LISTS[name](workspace_a, alice, SMALL)
    small = ui_queries(client, url)
    UI_LISTS[name](workspace_a, alice, LARGE - SMALL)
    large = ui_queries(client, url)
    assert large == small, f"{url}: {small} queries with {SMALL} rows, {large} with {LARGE}"


# --- The inbox and the ticket page: bounded (issue #7) ----------------------------------

# What the pages may cost, whatever the number of tickets and comments (the query lists are
# in ui/views/inbox.py and tests/test_inbox.py, ui/tests/test_ticket.py).
INBOX_MAX_QUERIES = 15
# Warm (the side panel's lists cached, ui/panel.py); a cold page costs 2 more.
TICKET_PAGE_MAX_QUERIES = 10


@pytest.mark.parametrize("view", ["mine", "open", "all", "unassigned", "pending"])
def test_inbox_views_are_bounded(view: str, workspace_a: Workspace, alice: Agent) -> None:
    client = signed_in(alice)
    url = f"{reverse('ui:inbox')}?view={view}"
    tickets(workspace_a, SMALL)
    small = ui_queries(client, url)
    tickets(workspace_a, LARGE - SMALL)
    large = ui_queries(client, url)
    assert large == small <= INBOX_MAX_QUERIES


def test_ticket_page_is_bounded(workspace_a: Workspace, alice: Agent) -> None:
    client = signed_in(alice)
    ticket = tickets(workspace_a, 1)[0]
    url = reverse("ui:ticket", args=[ticket.number])
    comments(ticket, SMALL)
    ui_queries(client, url)  # fills the side panel's cache, as any earlier page view does
    small = ui_queries(client, url)
    comments(ticket, LARGE - SMALL)
    large = ui_queries(client, url)
    assert large == small <= TICKET_PAGE_MAX_QUERIES
