"""Customers and companies: lists with search, a page each with their tickets, editing.

Reads are ``workspaces.selectors`` (``customer_list``, ``company_list``,
``customer_tickets``, ``company_tickets``); writes are ``workspaces.services``
(``customer_create``, ``customer_update``, ``company_create``, ``company_update``), which
enforce the roles: light agents read only, companies are edited by admins. Lists are keyset
pages like the inbox (newest first, as the API's).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_http_methods

from enque.errors import EnqueError, Forbidden
from tickets.models import ACTIVE_STATUSES, Ticket
from ui.forms import CompanyForm, CustomerForm, add_service_error
from ui.pagination import keyset_page
from ui.session import agent_view
from ui.views.common import render_page
from workspaces import selectors, services
from workspaces.models import Company, Customer

PAGE_SIZE = 30
TICKETS_PAGE_SIZE = 20


def _ticket_count(**outer: str) -> Coalesce:
    """Open tickets of the outer row, as a subquery of the same SELECT."""
    subquery = (
        Ticket.objects.filter(deleted_at__isnull=True, status__in=list(ACTIVE_STATUSES), **outer)
        .order_by()
        .values(*outer)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(subquery, output_field=IntegerField()), 0)


# --- Customers -------------------------------------------------------------------------------


@require_GET
@agent_view
def customer_list(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()[:200]
    customers = selectors.customer_list(workspace=request.workspace, q=q).annotate(
        open_tickets=_ticket_count(customer=OuterRef("pk"))
    )
    page = keyset_page(
        customers,
        field="created_at",
        descending=True,
        cursor=request.GET.get("cursor"),
        size=PAGE_SIZE,
    )
    return render_page(
        request, "ui/people/customer_list.html", {"page": page, "customers": page.rows, "q": q}
    )


def _customer_or_404(request: HttpRequest, pk: int) -> Customer:
    customer = (
        Customer.objects.for_workspace(request.workspace)
        .select_related("company")
        .filter(pk=pk)
        .first()
    )
    if customer is None:
        raise Http404
    return customer


@require_http_methods(["GET", "POST"])
@agent_view
def customer_new(request: HttpRequest) -> HttpResponse:
    form = CustomerForm(request.POST or None, workspace=request.workspace)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        extra: dict[str, Any] = {"company": data["company"]} if data["company"] else {}
        try:
            customer = services.customer_create(
                workspace=request.workspace,
                actor=request.agent,
                email=data["email"],
                name=data["name"],
                phone=data["phone"],
                notes=data["notes"],
                **extra,
            )
        except EnqueError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Added {customer.display_name}.")
            return redirect("ui:customer", pk=customer.pk)
    status = 400 if request.method == "POST" else 200
    return render_page(request, "ui/people/customer_new.html", {"form": form}, status=status)


@require_http_methods(["GET", "POST"])
@agent_view
def customer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _customer_or_404(request, pk)
    initial = {
        "name": customer.name,
        "email": customer.email,
        "phone": customer.phone,
        "company": customer.company_id,
        "notes": customer.notes,
    }
    form = CustomerForm(request.POST or None, initial=initial, workspace=request.workspace)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.customer_update(
                    workspace=request.workspace,
                    actor=request.agent,
                    customer=customer,
                    email=data["email"],
                    name=data["name"],
                    phone=data["phone"],
                    company=data["company"],
                    notes=data["notes"],
                )
            except EnqueError as exc:
                add_service_error(form, exc)
            else:
                messages.success(request, "Saved.")
                return redirect("ui:customer", pk=customer.pk)
        status = 400
        customer = _customer_or_404(request, pk)  # the form's values were not saved
    tickets = selectors.customer_tickets(workspace=request.workspace, customer=customer)
    page = keyset_page(
        tickets,
        field="updated_at",
        descending=True,
        cursor=request.GET.get("cursor"),
        size=TICKETS_PAGE_SIZE,
    )
    return render_page(
        request,
        "ui/people/customer_detail.html",
        {
            "customer": customer,
            "form": form,
            "page": page,
            "tickets": page.rows,
            "editing": request.method == "POST",
        },
        status=status,
    )


# --- Companies -------------------------------------------------------------------------------


@require_GET
@agent_view
def company_list(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()[:200]
    customers = (
        Customer.objects.filter(company=OuterRef("pk"))
        .order_by()
        .values("company")
        .annotate(n=Count("pk"))
        .values("n")
    )
    companies = selectors.company_list(workspace=request.workspace, q=q).annotate(
        customer_count=Coalesce(Subquery(customers, output_field=IntegerField()), 0),
        open_tickets=_ticket_count(company=OuterRef("pk")),
    )
    page = keyset_page(
        companies,
        field="created_at",
        descending=True,
        cursor=request.GET.get("cursor"),
        size=PAGE_SIZE,
    )
    return render_page(
        request, "ui/people/company_list.html", {"page": page, "companies": page.rows, "q": q}
    )


def _company_or_404(request: HttpRequest, pk: int) -> Company:
    company = selectors.company_list(workspace=request.workspace).filter(pk=pk).first()
    if company is None:
        raise Http404
    return company


@require_http_methods(["GET", "POST"])
@agent_view
def company_new(request: HttpRequest) -> HttpResponse:
    form = CompanyForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                # company_create is the pipeline's too and takes no actor: the role is
                # checked here, as the API does (IsAdminRole).
                if not request.agent.is_admin:
                    raise Forbidden("Only admins add companies.")
                company = services.company_create(
                    workspace=request.workspace,
                    name=data["name"],
                    domains=data["domains"],
                    notes=data["notes"],
                )
            except EnqueError as exc:
                add_service_error(form, exc)
            else:
                messages.success(request, f"Added {company.name}.")
                return redirect("ui:company", pk=company.pk)
    return render_page(request, "ui/people/company_new.html", {"form": form}, status=status)


@require_http_methods(["GET", "POST"])
@agent_view
def company_detail(request: HttpRequest, pk: int) -> HttpResponse:
    company = _company_or_404(request, pk)
    initial = {
        "name": company.name,
        "domains": "\n".join(d.domain for d in company.domains.all()),
        "notes": company.notes,
    }
    form = CompanyForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.company_update(
                    workspace=request.workspace,
                    actor=request.agent,
                    company=company,
                    name=data["name"],
                    notes=data["notes"],
                    domains=data["domains"],
                )
            except EnqueError as exc:
                add_service_error(form, exc)
            else:
                messages.success(request, "Saved.")
                return redirect("ui:company", pk=company.pk)
        status = 400
        company = _company_or_404(request, pk)
    customers = list(
        selectors.customer_list(workspace=request.workspace, company=company).order_by(
            "name", "email", "id"
        )[:50]
    )
    customer_count = Customer.objects.for_workspace(request.workspace).filter(company=company)
    tickets = selectors.company_tickets(workspace=request.workspace, company=company)
    page = keyset_page(
        tickets,
        field="updated_at",
        descending=True,
        cursor=request.GET.get("cursor"),
        size=TICKETS_PAGE_SIZE,
    )
    return render_page(
        request,
        "ui/people/company_detail.html",
        {
            "company": company,
            "form": form,
            "customers": customers,
            "customer_count": customer_count.count(),
            "page": page,
            "tickets": page.rows,
            "editing": request.method == "POST",
        },
        status=status,
    )
