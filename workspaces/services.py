"""Writes to workspaces and people. Every function takes the workspace explicitly."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from enque.errors import Conflict, InvalidInput
from workspaces.models import (
    Agent,
    AgentRole,
    Company,
    CompanyDomain,
    Customer,
    Team,
    TeamMembership,
    User,
    Workspace,
)


def ensure_same_workspace(workspace: Workspace, obj: object | None, *, field: str) -> None:
    """Refuse a reference to another workspace's object, whatever the caller checked."""
    if obj is None:
        return
    if getattr(obj, "workspace_id", None) != workspace.pk:
        raise InvalidInput(
            f"Unknown {field} in this workspace.", code="invalid_reference", field=field
        )


def _unique_slug(name: str) -> str:
    base = slugify(name)[:60] or "workspace"
    slug, n = base, 1
    while Workspace.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def workspace_create(*, name: str, owner: User, timezone_name: str = "UTC") -> Workspace:
    """A new tenant, with ``owner`` as its first agent and its ticket sequence."""
    from tickets.models import TicketCounter

    name = name.strip()
    if not name:
        raise InvalidInput("A workspace needs a name.", code="required", field="name")
    with transaction.atomic():
        workspace = Workspace.objects.create(
            name=name, slug=_unique_slug(name), timezone=timezone_name
        )
        TicketCounter.objects.create(workspace=workspace)
        Agent.objects.create(workspace=workspace, user=owner, role=AgentRole.OWNER)
        owner.last_workspace = workspace
        owner.save(update_fields=["last_workspace"])
    return workspace


def user_create(*, email: str, name: str = "", password: str | None = None) -> User:
    email = email.strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise Conflict("A user with this email address exists.", code="email_taken", field="email")
    return User.objects.create_user(email=email, name=name.strip(), password=password)


def agent_add(
    *,
    workspace: Workspace,
    user: User,
    role: str = AgentRole.AGENT,
    display_name: str = "",
) -> Agent:
    """Make ``user`` a member of ``workspace`` (or reactivate their membership)."""
    if role not in AgentRole.values:
        raise InvalidInput(f"Unknown role {role!r}.", code="invalid_choice", field="role")
    with transaction.atomic():
        agent, created = Agent.objects.get_or_create(
            workspace=workspace,
            user=user,
            defaults={"role": role, "display_name": display_name},
        )
        if not created and (not agent.is_active or agent.role != role):
            if agent.is_active and agent.role == AgentRole.OWNER and role != AgentRole.OWNER:
                _ensure_another_owner(agent)
            agent.is_active = True
            agent.role = role
            agent.save(update_fields=["is_active", "role", "updated_at"])
    return agent


def agent_set_role(*, agent: Agent, role: str) -> Agent:
    if role not in AgentRole.values:
        raise InvalidInput(f"Unknown role {role!r}.", code="invalid_choice", field="role")
    with transaction.atomic():
        locked = Agent.objects.select_for_update().get(pk=agent.pk)
        if locked.role == AgentRole.OWNER and role != AgentRole.OWNER:
            _ensure_another_owner(locked)
        locked.role = role
        locked.save(update_fields=["role", "updated_at"])
    agent.role = role
    return agent


def agent_deactivate(*, agent: Agent) -> Agent:
    """Deactivate a membership; their tickets are left unassigned for others to pick up.

    The unassignment is a ticket change like any other: a history row per ticket (by the
    system), a fresh ``updated_at`` for the inboxes, and the ticket hooks after commit.
    """
    from tickets import hooks
    from tickets.actors import Actor
    from tickets.models import ActorType, Ticket, TicketEvent, TicketEventKind

    now = timezone.now()
    with transaction.atomic():
        locked = Agent.objects.select_for_update().get(pk=agent.pk)
        if locked.role == AgentRole.OWNER:
            _ensure_another_owner(locked)
        locked.is_active = False
        locked.save(update_fields=["is_active", "updated_at"])
        # Locked in primary-key order, like every multi-ticket write.
        tickets = list(
            Ticket.objects.for_workspace(locked.workspace_id)
            .filter(assignee=locked)
            .select_for_update()
            .order_by("pk")
            .only("pk", "number", "workspace_id")
        )
        Ticket.objects.filter(pk__in=[t.pk for t in tickets]).update(assignee=None, updated_at=now)
        TicketEvent.objects.bulk_create(
            TicketEvent(
                workspace_id=t.workspace_id,
                ticket=t,
                kind=TicketEventKind.FIELD_CHANGED,
                actor_type=ActorType.SYSTEM,
                field="assignee",
                old_value=locked.pk,
                new_value=None,
                data={"reason": "agent_deactivated"},
                created_at=now,
            )
            for t in tickets
        )
        actor = Actor.system().as_payload()
        for t in tickets:
            for type_, data in (
                ("ticket.updated", {"changes": {"assignee": {"old": locked.pk, "new": None}}}),
                ("ticket.assigned", {"assignee": None, "previous": locked.pk}),
            ):
                hooks.emit(
                    hooks.TicketChange(
                        type=type_,
                        workspace_id=t.workspace_id,
                        ticket_id=t.pk,
                        ticket_number=t.number,
                        actor=actor,
                        data=data,
                    )
                )
    agent.is_active = False
    return agent


def _ensure_another_owner(agent: Agent) -> None:
    # Lock every owner row (in id order) so two owners demoting each other at once
    # serialise here instead of both succeeding.
    owners = list(
        Agent.objects.for_workspace(agent.workspace_id)
        .select_for_update()
        .filter(role=AgentRole.OWNER, is_active=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not [pk for pk in owners if pk != agent.pk]:
        raise Conflict("A workspace keeps at least one active owner.", code="last_owner")


def team_create(
    *, workspace: Workspace, name: str, description: str = "", members: Iterable[Agent] = ()
) -> Team:
    name = name.strip()
    if not name:
        raise InvalidInput("A team needs a name.", code="required", field="name")
    try:
        with transaction.atomic():
            team = Team.objects.create(workspace=workspace, name=name, description=description)
            team_set_members(team=team, members=members)
    except IntegrityError:
        raise Conflict("A team with this name exists.", code="duplicate", field="name") from None
    return team


def team_set_members(*, team: Team, members: Iterable[Agent]) -> None:
    workspace = team.workspace
    wanted = {agent.pk: agent for agent in members}
    for agent in wanted.values():
        ensure_same_workspace(workspace, agent, field="members")
    with transaction.atomic():
        current = set(team.memberships.values_list("agent_id", flat=True))
        team.memberships.exclude(agent_id__in=wanted).delete()
        TeamMembership.objects.bulk_create(
            [
                TeamMembership(workspace=workspace, team=team, agent=agent)
                for pk, agent in wanted.items()
                if pk not in current
            ]
        )


def _normalise_domain(domain: str) -> str:
    return domain.strip().lower().lstrip("@").rstrip(".")


def company_create(*, workspace: Workspace, name: str, domains: Iterable[str] = ()) -> Company:
    name = name.strip()
    if not name:
        raise InvalidInput("A company needs a name.", code="required", field="name")
    try:
        with transaction.atomic():
            company = Company.objects.create(workspace=workspace, name=name)
            company_set_domains(company=company, domains=domains)
    except IntegrityError:
        raise Conflict(
            "A company with this name or domain exists.", code="duplicate", field="name"
        ) from None
    return company


def company_set_domains(*, company: Company, domains: Iterable[str]) -> None:
    wanted = {_normalise_domain(d) for d in domains if _normalise_domain(d)}
    for domain in wanted:
        if "." not in domain or "@" in domain or " " in domain:
            raise InvalidInput(f"{domain!r} is not a mail domain.", code="invalid", field="domains")
    taken = (
        CompanyDomain.objects.for_workspace(company.workspace_id)
        .filter(domain__in=wanted)
        .exclude(company=company)
    )
    if taken.exists():
        raise Conflict("That domain belongs to another company.", code="duplicate", field="domains")
    with transaction.atomic():
        company.domains.exclude(domain__in=wanted).delete()
        existing = set(company.domains.values_list("domain", flat=True))
        CompanyDomain.objects.bulk_create(
            [
                CompanyDomain(workspace_id=company.workspace_id, company=company, domain=d)
                for d in sorted(wanted - existing)
            ]
        )


def company_for_email(workspace: Workspace, email: str) -> Company | None:
    domain = _normalise_domain(email.rpartition("@")[2])
    if not domain:
        return None
    match = (
        CompanyDomain.objects.for_workspace(workspace)
        .filter(domain=domain)
        .select_related("company")
        .first()
    )
    return match.company if match else None


def customer_get_or_create(
    *, workspace: Workspace, email: str, name: str = ""
) -> tuple[Customer, bool]:
    """The workspace's customer for this address (case-insensitive), created if new.

    A new customer joins the company that owns their mail domain. A name is filled in
    when we learn one, never overwritten.
    """
    email = email.strip().lower()
    if "@" not in email:
        raise InvalidInput("A customer needs an email address.", code="invalid", field="email")
    name = name.strip()
    existing = Customer.objects.for_workspace(workspace).filter(email=email).first()
    if existing:
        if name and not existing.name:
            existing.name = name
            existing.save(update_fields=["name", "updated_at"])
        return existing, False
    try:
        with transaction.atomic():
            customer = Customer.objects.create(
                workspace=workspace,
                email=email,
                name=name,
                company=company_for_email(workspace, email),
            )
    except IntegrityError:
        # Two messages from a new address raced; the other one created the row.
        return Customer.objects.for_workspace(workspace).get(email=email), False
    return customer, True
