"""The ticket page and everything done on it.

Every change posts to a small endpoint that calls one ticket service and answers, for
htmx, with the "live bundle": the header, the side panel and the thread, each swapped out
of band (``ui/ticket/_live.html``). The websocket's refresh (``ticket_live``) answers the
same bundle, so a change made here, by a colleague, by an email or by an automation shows
the same way. Without htmx each endpoint redirects back to the page (post/redirect/get).

Query budget of the page (asserted in enque/tests/test_query_counts.py and
ui/tests/test_ticket_page_panel.py), whatever the length of the thread: session, user,
membership; the ticket with its embedded objects and counts, whether it has pending scheduled
replies and how many tickets its customer has; its tags; the comments with authors; their
attachments; the history with actors; the workspace switcher. Only when there is something
to show: automation names (the history names an automation), pending scheduled replies
(with their attachment counts), the customer's other tickets. The pickers (agents, teams,
categories, tags) and the canned replies come from the cache (ui/panel.py); when it is cold,
one query for the four pickers and one for the canned replies.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import Count, Exists, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from automation.models import Automation
from enque.errors import EnqueError, NotFound
from tickets import selectors, services
from tickets.actors import Actor
from tickets.models import (
    DONE_STATUSES,
    CannedReply,
    ScheduledComment,
    ScheduledCommentStatus,
    Ticket,
    TicketAttachment,
    TicketPriority,
    TicketStatus,
)
from ui.forms import MergeForm, ReplyForm, TagForm, TicketFieldsForm, add_service_error
from ui.panel import CannedOption, PanelLists
from ui.session import agent_view
from ui.thread import Names, build_thread
from ui.views.attachments import size_limited_upload
from ui.views.common import (
    Lookups,
    is_htmx,
    redirect_htmx_aware,
    render_fragment,
    render_page,
)

OTHER_TICKETS_SHOWN = 5


def ticket_or_404(request: HttpRequest, number: int, *, include_deleted: bool = False) -> Ticket:
    """The workspace's ticket #number; a deleted one only when asked for and only for
    admins (who may restore it): to anyone else a deleted ticket does not exist."""
    try:
        return selectors.ticket_get(
            workspace=request.workspace,
            number=number,
            include_deleted=include_deleted and request.agent.is_admin,
        )
    except NotFound:
        raise Http404 from None


def page_ticket_or_404(
    request: HttpRequest, number: int, *, include_deleted: bool = True
) -> Ticket:
    """``ticket_or_404`` plus, in the same SELECT, what the page would otherwise ask in
    queries of their own: how many (not deleted) tickets the customer has, and whether
    the ticket has pending scheduled replies. Either being nothing spares a query."""
    customer_tickets = (
        Ticket.objects.filter(
            workspace_id=OuterRef("workspace_id"),
            customer_id=OuterRef("customer_id"),
            deleted_at__isnull=True,
        )
        .order_by()
        .values("customer_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    pending = ScheduledComment.objects.filter(
        ticket_id=OuterRef("pk"), status=ScheduledCommentStatus.PENDING
    )
    ticket = (
        selectors.ticket_detail_list(
            workspace=request.workspace,
            include_deleted=include_deleted and request.agent.is_admin,
        )
        .filter(number=number)
        .annotate(
            customer_ticket_count=Coalesce(
                Subquery(customer_tickets, output_field=IntegerField()), 0
            ),
            has_pending_scheduled=Exists(pending),
        )
        .first()
    )
    if ticket is None:
        raise Http404
    return ticket


def panel_lists(request: HttpRequest) -> PanelLists:
    return PanelLists(workspace_id=request.workspace.pk, agent_id=request.agent.pk)


def sla_clocks(ticket: Ticket, now: datetime) -> list[dict[str, Any]]:
    """The SLA deadlines still running: first response until answered, resolution until
    resolved."""
    clocks = []
    if ticket.first_response_due_at and ticket.first_response_at is None:
        clocks.append({"label": "First response", "due": ticket.first_response_due_at})
    if ticket.sla_due_at and ticket.status not in DONE_STATUSES:
        clocks.append({"label": "Resolution", "due": ticket.sla_due_at})
    for clock in clocks:
        left = (clock["due"] - now).total_seconds()
        clock["overdue"] = left < 0
        clock["soon"] = 0 <= left < 3600
    return clocks


def ticket_context(request: HttpRequest, ticket: Ticket, lists: PanelLists) -> dict[str, Any]:
    """Header, side panel and thread: what the page and the live bundle render.

    ``ticket`` comes from ``page_ticket_or_404`` (its counts decide which queries run)."""
    workspace = request.workspace
    options = lists.options
    comments = list(selectors.comment_list(ticket=ticket))
    events = list(selectors.ticket_event_list(ticket=ticket))
    automation_ids = {
        e.data["automation"]
        for e in events
        if isinstance(e.data, dict) and e.data.get("automation")
    }
    automations = (
        dict(
            Automation.objects.for_workspace(workspace)
            .filter(pk__in=automation_ids)
            .values_list("pk", "name")
        )
        if automation_ids
        else {}
    )
    names = Names(
        agents=options.agents,
        teams=options.teams,
        categories=options.categories,
        automations=automations,
    )
    scheduled: list[ScheduledComment] = []
    # scheduled_comment_list leaves out a deleted ticket's replies.
    if ticket.has_pending_scheduled and ticket.deleted_at is None:
        attachments = (
            TicketAttachment.objects.filter(scheduled_comment_id=OuterRef("pk"))
            .order_by()
            .values("scheduled_comment_id")
            .annotate(n=Count("pk"))
            .values("n")
        )
        scheduled = list(
            selectors.scheduled_comment_list(workspace=workspace)
            .filter(ticket=ticket, status=ScheduledCommentStatus.PENDING)
            # The thread shows how many attachments each has, not the files themselves.
            .prefetch_related(None)
            .annotate(
                attachment_count=Coalesce(Subquery(attachments, output_field=IntegerField()), 0)
            )
        )
    customer_ticket_count = ticket.customer_ticket_count
    # How many of those are others: the ticket itself counts unless deleted.
    other_count = customer_ticket_count - (1 if ticket.deleted_at is None else 0)
    other_tickets = (
        list(
            Ticket.objects.for_workspace(workspace)
            .filter(customer_id=ticket.customer_id, deleted_at__isnull=True)
            .exclude(pk=ticket.pk)
            .order_by("-updated_at", "-id")
            .only("number", "subject", "status", "updated_at")[:OTHER_TICKETS_SHOWN]
        )
        if other_count > 0
        else []
    )
    return {
        "ticket": ticket,
        "thread": build_thread(
            comments=comments,
            events=events,
            names=names,
            original_html=ticket.body.html if getattr(ticket, "body", None) else "",
        ),
        "scheduled": scheduled,
        "lookups": options,
        "statuses": TicketStatus.choices,
        "priorities": TicketPriority.choices,
        "sla": sla_clocks(ticket, timezone.now()),
        "other_tickets": other_tickets,
        "customer_ticket_count": customer_ticket_count,
        "can_change": request.agent.can_reply
        and ticket.merged_into_id is None
        and ticket.deleted_at is None,
        "is_merged": ticket.merged_into_id is not None,
        "is_deleted": ticket.deleted_at is not None,
        # Deleting and restoring are the admins' (tickets.services.ticket_delete).
        "can_delete": request.agent.is_admin,
    }


def canned_replies(request: HttpRequest, lists: PanelLists | None = None) -> list[CannedOption]:
    """The workspace's shared canned replies and the agent's own (ui/panel.py)."""
    return (lists or panel_lists(request)).canned


def _reply_form(request: HttpRequest, data: Any = None, files: Any = None) -> ReplyForm:
    return ReplyForm(data, files, workspace=request.workspace, agent=request.agent)


@require_GET
@agent_view
def ticket_page(request: HttpRequest, number: int) -> HttpResponse:
    ticket = page_ticket_or_404(request, number)
    lists = panel_lists(request)
    context = ticket_context(request, ticket, lists)
    context.update(
        reply_form=_reply_form(request),
        merge_form=MergeForm(),
        canned=canned_replies(request, lists),
    )
    return render_page(request, "ui/ticket/ticket.html", context)


@require_GET
@agent_view
def ticket_live(request: HttpRequest, number: int) -> HttpResponse:
    """Header, side panel and thread as they are now (after a live event)."""
    return _live(request, number)


def _live(request: HttpRequest, number: int, **extra: Any) -> HttpResponse:
    # Read again: the ticket's embedded counts and tags are those of before the change.
    ticket = page_ticket_or_404(request, number)
    context = ticket_context(request, ticket, panel_lists(request))
    context.update(extra)
    return render_fragment(request, "ui/ticket/_live.html", context)


def _done(request: HttpRequest, ticket: Ticket, message: str = "", **extra: Any) -> HttpResponse:
    """The answer to a change: the live bundle for htmx, else back to the page."""
    if is_htmx(request):
        return _live(request, ticket.number, toast=message, **extra)
    if message:
        messages.success(request, message)
    return redirect("ui:ticket", number=ticket.number)


def _refused(request: HttpRequest, ticket: Ticket, message: str) -> HttpResponse:
    if is_htmx(request):
        return _live(request, ticket.number, toast=message, toast_error=True)
    messages.error(request, message)
    return redirect("ui:ticket", number=ticket.number)


@size_limited_upload
@require_POST
@agent_view
def ticket_reply(request: HttpRequest, number: int) -> HttpResponse:
    """A public reply, an internal note, or either scheduled for later."""
    ticket = ticket_or_404(request, number)
    form = _reply_form(request, request.POST, request.FILES)
    actor = Actor.for_agent(request.agent)
    if form.is_valid():
        data = form.cleaned_data
        try:
            attachments, missing = selectors.attachments_for_ids(
                workspace=request.workspace, ids=data["attachment_ids"]
            )
            if missing:
                raise NotFound("An attachment was not found; upload it again.")
            for upload in request.FILES.getlist("files"):
                attachments.append(
                    services.attachment_upload(
                        workspace=request.workspace, actor=actor, file=upload
                    )
                )
            internal = data["mode"] == "note"
            if data["when"] is not None:
                scheduled = services.comment_schedule(
                    ticket=ticket,
                    actor=actor,
                    send_at=data["when"],
                    body_text=data["body"],
                    internal=internal,
                    attachments=attachments,
                )
                message = f"Scheduled for {timezone.localtime(scheduled.send_at):%Y-%m-%d %H:%M}."
            else:
                services.comment_create(
                    ticket=ticket,
                    actor=actor,
                    body_text=data["body"],
                    internal=internal,
                    attachments=attachments,
                    status=data["status"] or None,
                )
                message = "Note added." if internal else "Reply sent."
        except EnqueError as exc:
            add_service_error(form, exc)
        else:
            if is_htmx(request):
                return _live(
                    request,
                    ticket.number,
                    toast=message,
                    reply_form=_reply_form(request),
                    canned=canned_replies(request),
                )
            messages.success(request, message)
            return redirect("ui:ticket", number=ticket.number)
    if is_htmx(request):
        response = render_fragment(
            request,
            "ui/ticket/_reply_form.html",
            {"ticket": ticket, "reply_form": form, "canned": canned_replies(request)},
            status=422,
        )
        response["HX-Retarget"] = "#reply-form"
        response["HX-Reswap"] = "outerHTML"
        return response
    lists = panel_lists(request)
    ticket = page_ticket_or_404(request, number, include_deleted=False)
    context = ticket_context(request, ticket, lists)
    context.update(reply_form=form, merge_form=MergeForm(), canned=canned_replies(request, lists))
    return render_page(request, "ui/ticket/ticket.html", context, status=400)


@require_POST
@agent_view
def ticket_update(request: HttpRequest, number: int) -> HttpResponse:
    """One or more side-panel fields; only the fields posted change."""
    ticket = ticket_or_404(request, number)
    lookups = Lookups(request)
    form = TicketFieldsForm(
        request.POST, agents=lookups.agents, teams=lookups.teams, categories=lookups.categories
    )
    if not form.is_valid():
        return _refused(request, ticket, " ".join(m for ms in form.errors.values() for m in ms))
    changes = form.changes()
    if "assignee" in changes and changes["assignee"] is not None:
        changes["assignee"] = next(a for a in lookups.agents if a.pk == changes["assignee"])
    if "team" in changes and changes["team"] is not None:
        changes["team"] = next(t for t in lookups.teams if t.pk == changes["team"])
    if "category" in changes and changes["category"] is not None:
        changes["category"] = next(c for c in lookups.categories if c.pk == changes["category"])
    if not changes:
        return _done(request, ticket)
    try:
        changed = services.ticket_update(
            ticket=ticket, actor=Actor.for_agent(request.agent), **changes
        )
    except EnqueError as exc:
        return _refused(request, ticket, exc.message)
    label = ", ".join(changed) if changed else ""
    return _done(request, ticket, f"Updated {label}." if label else "")


@require_POST
@agent_view
def ticket_tags(request: HttpRequest, number: int) -> HttpResponse:
    ticket = ticket_or_404(request, number)
    form = TagForm(request.POST)
    if not form.is_valid():
        return _refused(request, ticket, "Name a tag.")
    actor = Actor.for_agent(request.agent)
    try:
        if form.cleaned_data["add"].strip():
            services.ticket_add_tags(ticket=ticket, actor=actor, tags=[form.cleaned_data["add"]])
        if form.cleaned_data["remove"].strip():
            services.ticket_remove_tags(
                ticket=ticket, actor=actor, tags=[form.cleaned_data["remove"]]
            )
    except EnqueError as exc:
        return _refused(request, ticket, exc.message)
    return _done(request, ticket)


@require_POST
@agent_view
def ticket_merge(request: HttpRequest, number: int) -> HttpResponse:
    ticket = ticket_or_404(request, number)
    form = MergeForm(request.POST)
    if not form.is_valid():
        return _refused(request, ticket, "Give the number of the ticket to merge into.")
    into = form.cleaned_data["into"]
    target = (
        Ticket.objects.for_workspace(request.workspace)
        .filter(number=into, deleted_at__isnull=True)
        .first()
    )
    if target is None:
        return _refused(request, ticket, f"There is no ticket #{into} in this workspace.")
    try:
        services.ticket_merge(source=ticket, target=target, actor=Actor.for_agent(request.agent))
    except EnqueError as exc:
        return _refused(request, ticket, exc.message)
    messages.success(request, f"Merged #{ticket.number} into this ticket.")
    return redirect_htmx_aware(request, reverse("ui:ticket", args=[target.number]))


@require_POST
@agent_view
def canned_render(request: HttpRequest, number: int, pk: int) -> HttpResponse:
    """A canned reply with its placeholders filled for this ticket (and its use counted)."""
    ticket = ticket_or_404(request, number)
    canned = CannedReply.objects.for_workspace(request.workspace).filter(pk=pk).first()
    if canned is None:
        raise Http404
    try:
        rendered = services.canned_reply_render(
            workspace=request.workspace, actor=request.agent, canned_reply=canned, ticket=ticket
        )
    except NotFound:
        raise Http404 from None
    except EnqueError as exc:
        return JsonResponse({"error": exc.message}, status=exc.status_code)
    return JsonResponse({"body": rendered.body, "unknown": rendered.unknown_placeholders})


@require_POST
@agent_view
def scheduled_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    scheduled = (
        ScheduledComment.objects.for_workspace(request.workspace)
        .filter(pk=pk, ticket__deleted_at__isnull=True)
        .select_related("ticket")
        .first()
    )
    if scheduled is None:
        raise Http404
    try:
        services.scheduled_comment_cancel(scheduled=scheduled, actor=Actor.for_agent(request.agent))
    except EnqueError as exc:
        return _refused(request, scheduled.ticket, exc.message)
    return _done(request, scheduled.ticket, "Scheduled reply cancelled.")


class SubjectForm(forms.Form):
    subject = forms.CharField(max_length=998)


@require_POST
@agent_view
def ticket_subject(request: HttpRequest, number: int) -> HttpResponse:
    """Rename the ticket (``ticket_update``: the history records old and new subject)."""
    ticket = ticket_or_404(request, number)
    form = SubjectForm(request.POST)
    if not form.is_valid():
        return _refused(request, ticket, "The subject cannot be empty (at most 998 characters).")
    try:
        changed = services.ticket_update(
            ticket=ticket,
            actor=Actor.for_agent(request.agent),
            subject=form.cleaned_data["subject"],
        )
    except EnqueError as exc:
        return _refused(request, ticket, exc.message)
    return _done(request, ticket, "Subject changed." if changed else "")


@require_POST
@agent_view
def ticket_delete(request: HttpRequest, number: int) -> HttpResponse:
    """Soft delete (admins): the ticket leaves every list and can be restored."""
    ticket = ticket_or_404(request, number)
    try:
        services.ticket_delete(ticket=ticket, actor=Actor.for_agent(request.agent))
    except EnqueError as exc:
        return _refused(request, ticket, exc.message)
    messages.success(request, f"Ticket #{ticket.number} deleted. Admins can restore it.")
    return redirect_htmx_aware(request, reverse("ui:inbox"))


@require_POST
@agent_view
def ticket_restore(request: HttpRequest, number: int) -> HttpResponse:
    ticket = ticket_or_404(request, number, include_deleted=True)
    try:
        services.ticket_restore(ticket=ticket, actor=Actor.for_agent(request.agent))
    except EnqueError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Ticket #{ticket.number} restored.")
    return redirect_htmx_aware(request, reverse("ui:ticket", args=[ticket.number]))
