"""Opening a ticket from the UI, and the admins' list of deleted tickets.

A new ticket goes through ``tickets.services.ticket_create`` (channel ``web``), its customer
through ``workspaces.services.customer_get_or_create`` (an address the workspace does not
know yet becomes a customer) — both in one transaction, so a refused ticket leaves no
customer behind, as in ``POST /v1/tickets``. The first message is the agent's public
message to the customer (``ticket_create`` always opens with a public message); an
internal note can go with it, added by ``comment_create`` in the same transaction.
Light agents cannot open tickets: the service refuses, and the page says so up front.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_http_methods

from enque.errors import EnqueError
from tickets import services
from tickets.actors import Actor
from tickets.models import Ticket, TicketPriority
from ui.forms import add_service_error
from ui.pagination import keyset_page
from ui.session import agent_view
from ui.views.common import Lookups, render_fragment, render_page
from workspaces.models import Agent, Customer, Team, Workspace
from workspaces.services import customer_get_or_create

CUSTOMER_SUGGESTIONS = 8
DELETED_PAGE_SIZE = 25


class TicketNewForm(forms.Form):
    subject = forms.CharField(max_length=998)
    customer = forms.CharField(
        max_length=254,
        label="Customer",
        help_text="Search by name or email, or type a new address: the customer is created.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "list": "customer-options"}),
    )
    customer_name = forms.CharField(max_length=200, required=False, label="Name of a new customer")
    body = forms.CharField(
        label="Message to the customer",
        strip=False,
        max_length=100_000,
        widget=forms.Textarea(attrs={"rows": 7}),
    )
    note = forms.CharField(
        label="Internal note",
        required=False,
        strip=False,
        max_length=100_000,
        help_text="Only agents see it.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    priority = forms.ChoiceField(choices=TicketPriority.choices, initial=TicketPriority.NORMAL)
    assignee = forms.TypedChoiceField(coerce=int, empty_value=None, required=False)
    team = forms.TypedChoiceField(coerce=int, empty_value=None, required=False)
    category = forms.TypedChoiceField(coerce=int, empty_value=None, required=False)
    tags = forms.CharField(required=False, max_length=1000, help_text="Separate tags with commas.")

    def __init__(self, *args: Any, lookups: Lookups, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lookups = lookups
        self.fields["assignee"].choices = [("", "Unassigned")] + [
            (a.pk, a.name) for a in lookups.active_agents if a.can_reply
        ]
        self.fields["team"].choices = [("", "No team")] + [(t.pk, t.name) for t in lookups.teams]
        self.fields["category"].choices = [("", "No category")] + [
            (c.pk, c.name) for c in lookups.categories
        ]

    def clean_body(self) -> str:
        body = self.cleaned_data["body"]
        if not body.strip():
            raise forms.ValidationError("Write the first message.")
        return body

    def clean_tags(self) -> list[str]:
        raw = self.cleaned_data.get("tags") or ""
        return [t.strip() for t in raw.split(",") if t.strip()]

    def references(self) -> dict[str, Any]:
        data = self.cleaned_data
        agents = {a.pk: a for a in self.lookups.agents}
        teams: dict[int, Team] = {t.pk: t for t in self.lookups.teams}
        categories = {c.pk: c for c in self.lookups.categories}
        return {
            "assignee": agents.get(data["assignee"]) if data["assignee"] else None,
            "team": teams.get(data["team"]) if data["team"] else None,
            "category": categories.get(data["category"]) if data["category"] else None,
        }


def _customer(workspace: Workspace, text: str, name: str) -> Customer:
    """The customer the box names: an existing one by address (any case), else a new one
    for that address; ``customer_get_or_create`` refuses what is not an address."""
    address = text.strip()
    # "Name <address>" as the suggestions show them.
    if address.endswith(">") and "<" in address:
        address = address.rsplit("<", 1)[1].rstrip(">").strip()
    customer, _ = customer_get_or_create(workspace=workspace, email=address, name=name)
    return customer


@require_http_methods(["GET", "POST"])
@agent_view
def ticket_new(request: HttpRequest) -> HttpResponse:
    lookups = Lookups(request)
    agent: Agent = request.agent
    if request.method == "POST":
        form = TicketNewForm(request.POST, lookups=lookups)
        if form.is_valid():
            data = form.cleaned_data
            actor = Actor.for_agent(agent)
            try:
                # The customer and the ticket commit together.
                with transaction.atomic():
                    customer = _customer(request.workspace, data["customer"], data["customer_name"])
                    ticket = services.ticket_create(
                        workspace=request.workspace,
                        actor=actor,
                        subject=data["subject"],
                        customer=customer,
                        body_text=data["body"],
                        priority=data["priority"],
                        tags=data["tags"],
                        channel="web",
                        **form.references(),
                    )
                    if data["note"].strip():
                        services.comment_create(
                            ticket=ticket, actor=actor, body_text=data["note"], internal=True
                        )
            except EnqueError as exc:
                if exc.field in ("email", "customer"):
                    form.add_error("customer", exc.message)
                else:
                    add_service_error(form, exc)
            else:
                messages.success(request, f"Ticket #{ticket.number} opened.")
                return redirect("ui:ticket", number=ticket.number)
        status = 400
    else:
        initial: dict[str, Any] = {"priority": TicketPriority.NORMAL}
        customer_pk = request.GET.get("customer", "")
        if customer_pk.isdigit():
            known = (
                Customer.objects.for_workspace(request.workspace)
                .filter(pk=int(customer_pk))
                .first()
            )
            if known:
                initial["customer"] = known.email
        form = TicketNewForm(initial=initial, lookups=lookups)
        status = 200
    return render_page(
        request,
        "ui/ticket/new.html",
        {"form": form, "lookups": lookups, "can_create": agent.can_reply},
        status=status,
    )


@require_GET
@agent_view
def customer_suggestions(request: HttpRequest) -> HttpResponse:
    """The customer box's suggestions (htmx, into its <datalist>): name or email matches."""
    q = request.GET.get("customer", "").strip()[:200]
    customers: list[Customer] = []
    if len(q) >= 2:
        customers = list(
            Customer.objects.for_workspace(request.workspace)
            .filter(Q(email__icontains=q) | Q(name__icontains=q))
            .order_by("email")[:CUSTOMER_SUGGESTIONS]
        )
    return render_fragment(request, "ui/ticket/_customer_options.html", {"customers": customers})


@require_GET
@agent_view
def deleted_tickets(request: HttpRequest) -> HttpResponse:
    """Deleted tickets, newest deletion first, to restore (admins; others: 404)."""
    if not request.agent.is_admin:
        raise Http404
    tickets = (
        Ticket.objects.for_workspace(request.workspace)
        .filter(deleted_at__isnull=False)
        .select_related("customer")
        .only("number", "subject", "status", "deleted_at", "customer__email", "customer__name")
    )
    page = keyset_page(
        tickets,
        field="deleted_at",
        descending=True,
        cursor=request.GET.get("cursor"),
        size=DELETED_PAGE_SIZE,
    )
    return render_page(request, "ui/ticket/deleted.html", {"page": page, "tickets": page.rows})
