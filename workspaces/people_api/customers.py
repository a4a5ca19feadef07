"""``/v1/customers`` and ``/v1/companies``.

Customers: any member reads; agents and admins create and edit (light agents read only);
admins delete, and only a customer without tickets (409 ``customer_has_tickets``).
Companies: any member reads; admins write. Both lists search with ``q``; a customer's and a
company's tickets are cursor-paginated sub-lists (``/customers/:id/tickets``,
``/companies/:id/tickets``, ``/companies/:id/customers``).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from enque.api.permissions import IsAdminRole
from workspaces import selectors, services
from workspaces.models import Company, Customer, Workspace
from workspaces.people_api.base import NO_CONTENT, PeopleViewSet
from workspaces.people_api.serializers import (
    CompanyCreateInput,
    CompanyListQuery,
    CompanyOutput,
    CompanyUpdateInput,
    CustomerCreateInput,
    CustomerListQuery,
    CustomerOutput,
    CustomerUpdateInput,
    PageQuery,
    TicketSummaryOutput,
)

# Newest first: a unique, unchanging position for the cursor (names repeat and change).
PEOPLE_ORDERING = ("-created_at", "-id")
# A customer's or company's tickets: most recently updated first, like the inbox.
TICKET_ORDERING = ("-updated_at", "-id")

NOT_DELETABLE = OpenApiResponse(description="The customer has tickets (`customer_has_tickets`).")


def _company_ref(workspace: Workspace, data: dict[str, Any]) -> dict[str, Any]:
    """Pop ``company_id`` from a body and return it as the ``company`` a service takes,
    checked in the workspace (400 ``invalid_reference`` otherwise)."""
    if "company_id" not in data:
        return {}
    company_id = data.pop("company_id")
    if company_id is None:
        return {"company": None}
    return {
        "company": selectors.reference_in_workspace(
            Company, workspace, company_id, field="company_id"
        )
    }


class CustomerViewSet(PeopleViewSet):
    model = Customer
    output_serializer_class = CustomerOutput
    input_serializers = {"create": CustomerCreateInput, "partial_update": CustomerUpdateInput}
    output_serializers = {"destroy": NO_CONTENT, "tickets": TicketSummaryOutput}
    query_serializers = {"list": CustomerListQuery, "tickets": PageQuery}
    paginated_actions = frozenset({"tickets"})
    action_permission_classes = {"destroy": (IsAdminRole,)}

    def cursor_ordering(self) -> tuple[str, ...]:
        return TICKET_ORDERING if self.action == "tickets" else PEOPLE_ORDERING

    def get_workspace_queryset(self, workspace: Workspace) -> QuerySet[Customer]:
        company = None
        if "company" in self.query:
            company = selectors.reference_in_workspace(
                Company, workspace, self.query["company"], field="company"
            )
        return selectors.customer_list(
            workspace=workspace, q=self.query.get("q", ""), company=company
        )

    @extend_schema(summary="List customers", description="Newest first; search with `q`.")
    def list(self, request: Request) -> Response:
        return self.paginated(self.get_queryset())

    @extend_schema(
        summary="Create a customer",
        description="Agents and admins. An email address already used by a customer of the "
        "workspace (in any case) is a 409 `duplicate`.",
    )
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        company = _company_ref(self.workspace, data)
        customer = services.customer_create(
            workspace=self.workspace, actor=self.agent, **company, **data
        )
        return self.output(customer, status=status.HTTP_201_CREATED)

    @extend_schema(summary="A customer")
    def retrieve(self, request: Request, pk: str) -> Response:
        return self.output(self.get_object())

    @extend_schema(summary="Change a customer", description="Agents and admins.")
    def partial_update(self, request: Request, pk: str) -> Response:
        customer = self.get_object()
        data = self.validated_input(partial=True)
        company = _company_ref(self.workspace, data)
        services.customer_update(
            workspace=self.workspace, actor=self.agent, customer=customer, **company, **data
        )
        return self.output(customer)

    @extend_schema(
        summary="Delete a customer (admins)",
        description="Only a customer without tickets: one with tickets (deleted ones too) "
        "is a 409 `customer_has_tickets`, so the workspace's record of a conversation is "
        "never erased as a side effect.",
        responses={204: None, 409: NOT_DELETABLE},
    )
    def destroy(self, request: Request, pk: str) -> Response:
        services.customer_delete(
            workspace=self.workspace, actor=self.agent, customer=self.get_object()
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="A customer's tickets",
        description="Most recently updated first; deleted tickets are left out.",
        responses=TicketSummaryOutput(many=True),
    )
    @action(detail=True, methods=["get"])
    def tickets(self, request: Request, pk: str) -> Response:
        customer = self.get_object()
        return self.paginated(
            selectors.customer_tickets(workspace=self.workspace, customer=customer)
        )


class CompanyViewSet(PeopleViewSet):
    model = Company
    output_serializer_class = CompanyOutput
    input_serializers = {"create": CompanyCreateInput, "partial_update": CompanyUpdateInput}
    output_serializers = {
        "destroy": NO_CONTENT,
        "customers": CustomerOutput,
        "tickets": TicketSummaryOutput,
    }
    query_serializers = {"list": CompanyListQuery, "customers": PageQuery, "tickets": PageQuery}
    paginated_actions = frozenset({"customers", "tickets"})
    action_permission_classes = {
        "create": (IsAdminRole,),
        "partial_update": (IsAdminRole,),
        "destroy": (IsAdminRole,),
    }

    def cursor_ordering(self) -> tuple[str, ...]:
        if self.action == "tickets":
            return TICKET_ORDERING
        if self.action == "customers":
            return PEOPLE_ORDERING
        # Companies are few and unique by name in a workspace: alphabetical.
        return ("name", "id")

    def get_workspace_queryset(self, workspace: Workspace) -> QuerySet[Company]:
        return selectors.company_list(workspace=workspace, q=self.query.get("q", ""))

    @extend_schema(summary="List companies", description="By name; search with `q`.")
    def list(self, request: Request) -> Response:
        return self.paginated(self.get_queryset())

    @extend_schema(
        summary="Create a company (admins)",
        description="A name or domain another company of the workspace has is a 409 `duplicate`.",
    )
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        company = services.company_create(workspace=self.workspace, **data)
        return self.output(self._fresh(company), status=status.HTTP_201_CREATED)

    @extend_schema(summary="A company")
    def retrieve(self, request: Request, pk: str) -> Response:
        return self.output(self.get_object())

    @extend_schema(
        summary="Change a company (admins)",
        description="`domains`, when given, replaces the company's list.",
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        company = self.get_object()
        data = self.validated_input(partial=True)
        services.company_update(workspace=self.workspace, actor=self.agent, company=company, **data)
        return self.output(self._fresh(company))

    @extend_schema(
        summary="Delete a company (admins)",
        description="Its customers stay, without a company; its tickets lose the company "
        "(with a history row each).",
        responses={204: None},
    )
    def destroy(self, request: Request, pk: str) -> Response:
        services.company_delete(
            workspace=self.workspace, actor=self.agent, company=self.get_object()
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="A company's customers",
        description="Newest first.",
        responses=CustomerOutput(many=True),
    )
    @action(detail=True, methods=["get"])
    def customers(self, request: Request, pk: str) -> Response:
        company = self.get_object()
        return self.paginated(selectors.customer_list(workspace=self.workspace, company=company))

    @extend_schema(
        summary="A company's tickets",
        description="Most recently updated first; deleted tickets are left out.",
        responses=TicketSummaryOutput(many=True),
    )
    @action(detail=True, methods=["get"])
    def tickets(self, request: Request, pk: str) -> Response:
        company = self.get_object()
        return self.paginated(selectors.company_tickets(workspace=self.workspace, company=company))

    def _fresh(self, company: Company) -> Company:
        # Re-read through the selector so the domains come from the database, as stored.
        return selectors.company_list(workspace=self.workspace).get(pk=company.pk)
