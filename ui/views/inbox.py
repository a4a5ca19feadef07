"""The inbox: views, filters, search, sorting, keyset pages and bulk actions.

Query budget of a page (asserted in ui/tests/test_inbox.py), whatever the number of rows:
session, user, membership; teams; mailboxes; saved views; the maintained view counts
(``tickets.counts``; plus one for saved views' counts when the agent has any); the page of
tickets with customer, company, team and category joined; their assignees; their tags;
agents, categories and tags for the filter bar; the workspace switcher; and one EXISTS per
reference filter given.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from enque.errors import EnqueError, NotFound
from tickets import selectors, services
from tickets.actors import Actor
from tickets.api.filters import as_stored_filters
from tickets.models import SavedView, Ticket, TicketPriority, TicketStatus
from ui.forms import BulkForm, SavedViewForm
from ui.inbox import (
    DATE_PARAMS,
    DEFAULT_VIEW,
    FILTER_PARAMS,
    ORDERING_LABELS,
    PAGE_SIZE,
    effective_filters,
    ordering_parts,
    parse_filters,
    sidebar,
)
from ui.pagination import keyset_page
from ui.session import agent_view
from ui.views.common import (
    Lookups,
    is_htmx,
    redirect_htmx_aware,
    render_fragment,
    render_page,
    safe_next,
)
from workspaces.models import Company, Customer


@require_GET
@agent_view
def inbox(request: HttpRequest) -> HttpResponse:
    workspace, agent = request.workspace, request.agent
    lookups = Lookups(request)
    bar = sidebar(workspace=workspace, agent=agent, teams=lookups.teams)
    view_key = request.GET.get("view") or DEFAULT_VIEW
    view = bar.get(view_key)
    if view is None:
        # Another workspace's team or saved view, or one deleted since: not found.
        raise Http404
    filters = parse_filters(request.GET, workspace=workspace)
    effective = effective_filters(view, filters)
    field, descending = ordering_parts(effective["ordering"])
    page = keyset_page(
        selectors.ticket_filtered(workspace=workspace, agent=agent, filters=effective),
        field=field,
        descending=descending,
        cursor=request.GET.get("cursor"),
        size=PAGE_SIZE,
    )
    context: dict[str, Any] = {
        "bar": bar,
        "view": view,
        "filters": filters,
        "page": page,
        "tickets": page.rows,
        "ordering": effective["ordering"],
        "orderings": ORDERING_LABELS.items(),
        "lookups": lookups,
        "statuses": TicketStatus.choices,
        "priorities": TicketPriority.choices,
        "filter_customer": _named(Customer, workspace, filters.values.get("customer")),
        "filter_company": _named(Company, workspace, filters.values.get("company")),
        "base_query": _base_query(request),
        "is_search": bool(filters.values.get("q")),
    }
    if is_htmx(request) and request.headers.get("HX-Target") == "inbox-results":
        return render_fragment(request, "ui/inbox/_results_refresh.html", context)
    return render_page(request, "ui/inbox/inbox.html", context)


@require_GET
@agent_view
def inbox_counts(request: HttpRequest) -> HttpResponse:
    """The sidebar's counts alone, refreshed (debounced) by live events."""
    lookups = Lookups(request)
    bar = sidebar(workspace=request.workspace, agent=request.agent, teams=lookups.teams)
    view = bar.get(request.GET.get("view") or DEFAULT_VIEW)
    return render_fragment(
        request, "ui/inbox/_sidebar.html", {"bar": bar, "view": view, "oob": True}
    )


def _named(model: Any, workspace: Any, pk: Any) -> Any:
    if not isinstance(pk, int):
        return None
    return model.objects.for_workspace(workspace).filter(pk=pk).first()


def _base_query(request: HttpRequest) -> str:
    """The query string of the current view and filters, without the page position."""
    params = request.GET.copy()
    params.pop("cursor", None)
    for name in list(params):
        if name not in (*FILTER_PARAMS, *DATE_PARAMS, "view"):
            params.pop(name)
    return params.urlencode()


@require_POST
@agent_view
def bulk(request: HttpRequest) -> HttpResponse:
    """Apply one change to the selected tickets, each through the ticket services."""
    workspace, agent = request.workspace, request.agent
    back = safe_next(request, reverse("ui:inbox"))
    lookups = Lookups(request)
    form = BulkForm(request.POST, agents=lookups.agents)
    if not form.is_valid():
        errors = [str(e) for errors in form.errors.values() for e in errors]
        messages.error(request, " ".join(errors) or "Select tickets and an action.")
        return redirect_htmx_aware(request, back)
    data = form.cleaned_data
    actor = Actor.for_agent(agent)
    numbers: list[int] = data["numbers"]
    try:
        if data["action"] == "merge":
            results = _merge(workspace, actor, numbers, data["into"])
        else:
            change: dict[str, Any] = {}
            if data["action"] == "assign":
                change["assignee"] = data["agent"]
            elif data["action"] == "status":
                change["status"] = data["status"]
            elif data["action"] == "tag":
                change["add_tags"] = [data["tag"].strip()]
            results = services.tickets_bulk_update(
                workspace=workspace, actor=actor, numbers=numbers, **change
            )
    except EnqueError as exc:
        messages.error(request, exc.message)
        return redirect_htmx_aware(request, back)
    _report(request, data["action"], results)
    return redirect_htmx_aware(request, back)


def _merge(workspace: Any, actor: Actor, numbers: list[int], into: int) -> list[dict[str, Any]]:
    target = (
        Ticket.objects.for_workspace(workspace).filter(number=into, deleted_at__isnull=True).first()
    )
    if target is None:
        raise NotFound(f"There is no ticket #{into} in this workspace.")
    sources = {
        t.number: t
        for t in Ticket.objects.for_workspace(workspace).filter(
            number__in=[n for n in numbers if n != into], deleted_at__isnull=True
        )
    }
    results: list[dict[str, Any]] = []
    for number in numbers:
        if number == into:
            continue
        source = sources.get(number)
        if source is None:
            results.append({"number": number, "ok": False, "error": {"message": "Not found."}})
            continue
        try:
            services.ticket_merge(source=source, target=target, actor=actor)
        except EnqueError as exc:
            results.append({"number": number, "ok": False, "error": exc.as_dict()})
        else:
            results.append({"number": number, "ok": True, "changed": ["merged_into"]})
    return results


def _report(request: HttpRequest, action: str, results: list[dict[str, Any]]) -> None:
    done = [r for r in results if r["ok"] and r.get("changed")]
    failed = [r for r in results if not r["ok"]]
    verb = {"assign": "Assigned", "status": "Updated", "tag": "Tagged", "merge": "Merged"}[action]
    if done:
        noun = "ticket" if len(done) == 1 else "tickets"
        messages.success(request, f"{verb} {len(done)} {noun}.")
    elif not failed:
        messages.info(request, "Nothing to change: the tickets were already like that.")
    for result in failed[:5]:
        messages.error(request, f"#{result['number']}: {result['error']['message']}")
    if len(failed) > 5:
        messages.error(request, f"…and {len(failed) - 5} more tickets could not change.")


@require_POST
@agent_view
def saved_view_create(request: HttpRequest) -> HttpResponse:
    """Save the current view and filters under a name (personal, or shared by an admin)."""
    workspace, agent = request.workspace, request.agent
    form = SavedViewForm(request.POST)
    back = safe_next(request, reverse("ui:inbox"))
    if not form.is_valid():
        messages.error(request, "Give the view a name.")
        return redirect_htmx_aware(request, back)
    lookups = Lookups(request)
    bar = sidebar(workspace=workspace, agent=agent, teams=lookups.teams, with_counts=False)
    view = bar.get(request.POST.get("view") or DEFAULT_VIEW)
    if view is None:
        raise Http404
    filters = parse_filters(request.POST, workspace=workspace)
    if filters.error:
        messages.error(request, filters.error)
        return redirect_htmx_aware(request, back)
    try:
        saved = services.saved_view_create(
            workspace=workspace,
            agent=agent,
            name=form.cleaned_data["name"],
            filters=as_stored_filters({**view.filters, **filters.values}),
            shared=form.cleaned_data["shared"],
        )
    except EnqueError as exc:
        messages.error(request, exc.message)
        return redirect_htmx_aware(request, back)
    messages.success(request, f"Saved the view “{saved.name}”.")
    return redirect_htmx_aware(request, f"{reverse('ui:inbox')}?view=saved-{saved.pk}")


@require_POST
@agent_view
def saved_view_delete(request: HttpRequest, pk: int) -> HttpResponse:
    view = selectors.saved_view_list(workspace=request.workspace, agent=request.agent).filter(pk=pk)
    saved: SavedView | None = view.first()
    if saved is None:
        raise Http404
    try:
        services.saved_view_delete(view=saved, agent=request.agent)
    except EnqueError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Deleted the view “{saved.name}”.")
    return redirect_htmx_aware(request, reverse("ui:inbox"))
