"""Reusable reads of workspaces and people: memberships, customers, companies, agents, teams.

Each selector takes the workspace as a required argument and carries the joins and
prefetches its callers' serializers need, so a list costs the same number of queries at
five rows as at five thousand. ``reference_in_workspace`` is the checked fetch for a
foreign key a client sets: another workspace's id and a missing one fail alike.
"""

from __future__ import annotations

from typing import TypeVar

from django.db import models
from django.db.models import F, OuterRef, Prefetch, Q, QuerySet, Subquery

from enque.errors import InvalidInput
from workspaces.models import (
    Agent,
    Company,
    CompanyDomain,
    Customer,
    Team,
    TenantModel,
    User,
    Workspace,
)

T = TypeVar("T", bound=TenantModel)


# --- Sign-in and the caller's workspaces (the auth API) --------------------------------------


def membership_for_login(*, user: User, workspace_id: int | None = None) -> Agent | None:
    """The active membership a sign-in (or a workspace switch) lands in, or None.

    With ``workspace_id``, that workspace's membership only; without, the workspace the
    user used last, else their most recently seen active membership. Inactive memberships
    and inactive workspaces never qualify.
    """
    memberships = Agent.objects.select_related("user", "workspace").filter(
        user=user, is_active=True, workspace__is_active=True
    )
    if workspace_id is not None:
        return memberships.filter(workspace_id=workspace_id).first()
    if user.last_workspace_id is not None:
        agent = memberships.filter(workspace_id=user.last_workspace_id).first()
        if agent is not None:
            return agent
    return memberships.order_by(
        F("last_seen_at").desc(nulls_last=True), "-created_at", "-id"
    ).first()


def workspaces_of_user(user: User) -> QuerySet[Workspace]:
    """The active workspaces where ``user`` is an active agent, each annotated with
    ``caller_role`` (their role there)."""
    memberships = Agent.objects.filter(user=user, is_active=True)
    return Workspace.objects.filter(
        is_active=True, pk__in=memberships.values("workspace_id")
    ).annotate(
        caller_role=Subquery(memberships.filter(workspace_id=OuterRef("pk")).values("role")[:1])
    )


def reference_in_workspace(
    queryset: QuerySet[T] | type[T], workspace: Workspace, pk: object, *, field: str
) -> T:
    """The object ``pk`` names in ``workspace``, else a 400 ``invalid_reference`` on ``field``.

    For ids a client puts in a body or a filter: the answer for another workspace's id is
    exactly the one for an id that does not exist.
    """
    if isinstance(queryset, type):
        queryset = queryset.objects.all()
    try:
        return queryset.filter(workspace_id=workspace.pk).get(pk=pk)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise InvalidInput(
            f"Unknown {field} in this workspace.", code="invalid_reference", field=field
        ) from None


def references_in_workspace(
    queryset: QuerySet[T] | type[T], workspace: Workspace, pks: list[int], *, field: str
) -> list[T]:
    """Every object of ``pks`` in ``workspace`` (in the given order), in one query."""
    if isinstance(queryset, type):
        queryset = queryset.objects.all()
    found = {obj.pk: obj for obj in queryset.filter(workspace_id=workspace.pk, pk__in=pks)}
    missing = [pk for pk in pks if pk not in found]
    if missing:
        raise InvalidInput(
            f"Unknown {field} in this workspace: {', '.join(map(str, missing))}.",
            code="invalid_reference",
            field=field,
        )
    return [found[pk] for pk in dict.fromkeys(pks)]


# --- Customers and companies -----------------------------------------------------------------


def customer_list(
    *, workspace: Workspace, q: str = "", company: Company | None = None
) -> QuerySet[Customer]:
    # One query: the customer rows joined to their company for the embedded summary.
    customers = Customer.objects.for_workspace(workspace).select_related("company")
    if q:
        customers = customers.filter(Q(name__icontains=q) | Q(email__icontains=q))
    if company is not None:
        customers = customers.filter(company=company)
    return customers


def company_list(*, workspace: Workspace, q: str = "") -> QuerySet[Company]:
    # Two queries: the companies, then every domain of the page's companies.
    companies = Company.objects.for_workspace(workspace).prefetch_related(
        Prefetch("domains", queryset=CompanyDomain.objects.order_by("domain"))
    )
    if q:
        # A domain can match several times; the subquery keeps each company once.
        by_domain = CompanyDomain.objects.for_workspace(workspace).filter(domain__icontains=q)
        companies = companies.filter(
            Q(name__icontains=q) | Q(pk__in=by_domain.values("company_id"))
        )
    return companies


# --- Agents and teams ------------------------------------------------------------------------


def agent_list(
    *,
    workspace: Workspace,
    q: str = "",
    role: str | None = None,
    is_active: bool | None = None,
    team: Team | None = None,
) -> QuerySet[Agent]:
    # Two queries: the agents joined to their users, then the teams of the page's agents.
    agents = (
        Agent.objects.for_workspace(workspace)
        .select_related("user")
        .prefetch_related(Prefetch("teams", queryset=Team.objects.order_by("name", "id")))
    )
    if q:
        agents = agents.filter(
            Q(display_name__icontains=q) | Q(user__name__icontains=q) | Q(user__email__icontains=q)
        )
    if role:
        agents = agents.filter(role=role)
    if is_active is not None:
        agents = agents.filter(is_active=is_active)
    if team is not None:
        agents = agents.filter(team_memberships__team=team)
    return agents


def team_list(*, workspace: Workspace, q: str = "") -> QuerySet[Team]:
    # Two queries: the teams, then their members joined to their users.
    teams = Team.objects.for_workspace(workspace).prefetch_related(
        Prefetch(
            "members",
            queryset=Agent.objects.select_related("user").order_by("display_name", "id"),
        )
    )
    if q:
        teams = teams.filter(name__icontains=q)
    return teams


def signature_agents(*, workspace: Workspace) -> QuerySet[Agent]:
    """The active agents whose signatures the signature page lists, with their users."""
    return (
        Agent.objects.for_workspace(workspace)
        .filter(is_active=True)
        .select_related("user")
        .order_by("created_at", "id")
    )


# --- Tickets of a customer or company --------------------------------------------------------


def ticket_summaries(*, workspace: Workspace) -> models.QuerySet:
    """Live (not deleted) tickets with what a ticket summary embeds.

    Two queries per page: the tickets joined to customer, assignee (and user), team and
    category; then the tags of the page's tickets.
    """
    from tickets.models import Tag, Ticket

    return (
        Ticket.objects.for_workspace(workspace)
        .filter(deleted_at__isnull=True)
        .select_related("customer", "assignee__user", "team", "category")
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.order_by("name")))
    )


def customer_tickets(*, workspace: Workspace, customer: Customer) -> models.QuerySet:
    return ticket_summaries(workspace=workspace).filter(customer=customer)


def company_tickets(*, workspace: Workspace, company: Company) -> models.QuerySet:
    return ticket_summaries(workspace=workspace).filter(company=company)
