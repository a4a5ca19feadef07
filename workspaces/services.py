"""Writes to workspaces and people. Every function takes the workspace explicitly."""

from __future__ import annotations

import hashlib
import logging
import secrets
import smtplib
import zoneinfo
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.core.validators import URLValidator, validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django.utils.text import slugify

from enque.errors import Conflict, Forbidden, InvalidInput, NotFound
from workspaces.models import (
    Agent,
    AgentRole,
    Company,
    CompanyDomain,
    Customer,
    Invitation,
    Team,
    TeamMembership,
    User,
    Workspace,
)

logger = logging.getLogger(__name__)


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
    *,
    workspace: Workspace,
    name: str,
    description: str = "",
    members: Iterable[Agent] = (),
    teams_webhook_url: str = "",
) -> Team:
    name = name.strip()
    if not name:
        raise InvalidInput("A team needs a name.", code="required", field="name")
    webhook = _teams_webhook_url(teams_webhook_url)
    try:
        with transaction.atomic():
            team = Team.objects.create(
                workspace=workspace, name=name, description=description, teams_webhook_url=webhook
            )
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


def company_create(
    *, workspace: Workspace, name: str, domains: Iterable[str] = (), notes: str = ""
) -> Company:
    name = name.strip()
    if not name:
        raise InvalidInput("A company needs a name.", code="required", field="name")
    try:
        with transaction.atomic():
            company = Company.objects.create(workspace=workspace, name=name, notes=notes.strip())
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


# --- Accounts, sign-in, passwords, invitations, workspace settings (the /v1 auth API) ---


class InvalidPassword(InvalidInput):
    """Django's password validators refused a password; ``field_messages`` lists each reason
    (the API shows them as separate messages of the ``password`` field)."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__(" ".join(messages), code="invalid_password", field="password")
        self.field_messages = messages


def _validate_password(password: str, user: User) -> None:
    try:
        password_validation.validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise InvalidPassword(list(exc.messages)) from None


def _normalise_email(email: str) -> str:
    email = email.strip().lower()
    try:
        validate_email(email)
    except DjangoValidationError:
        raise InvalidInput("Enter a valid email address.", code="invalid", field="email") from None
    return email


def _mail_on_commit(*, to: str, subject: str, body: str) -> None:
    """Send a notification after the transaction commits. A mail server that is down must
    not undo a committed change: the failure is logged and the user can ask again."""

    def send() -> None:
        try:
            send_mail(subject, body, None, [to])
        except (smtplib.SMTPException, OSError):
            logger.exception("Could not send the email %r", subject)

    transaction.on_commit(send)


def _require_member(actor: Agent, workspace: Workspace) -> None:
    if actor.workspace_id != workspace.pk or not actor.is_active:
        raise NotFound("Workspace not found.")


def _require_admin(actor: Agent, workspace: Workspace) -> None:
    _require_member(actor, workspace)
    if not actor.is_admin:
        raise Forbidden(
            "Only an owner or admin of the workspace may do this.", code="admin_required"
        )


def account_register(*, name: str, email: str, password: str, workspace_name: str) -> Agent:
    """Self-service sign-up: a new user and a new workspace, the user its owner."""
    name = name.strip()
    if not name:
        raise InvalidInput("Tell us your name.", code="required", field="name")
    email = _normalise_email(email)
    _validate_password(password, User(email=email, name=name))
    try:
        with transaction.atomic():
            user = user_create(email=email, name=name, password=password)
            workspace = workspace_create(name=workspace_name, owner=user)
    except IntegrityError:
        # Two sign-ups with one address raced past user_create's check.
        raise Conflict(
            "A user with this email address exists.", code="email_taken", field="email"
        ) from None
    return Agent.objects.select_related("user", "workspace").get(workspace=workspace, user=user)


def agent_record_login(*, agent: Agent) -> None:
    """A sign-in (or workspace switch) happened: remember when, and where it landed."""
    now = timezone.now()
    with transaction.atomic():
        User.objects.filter(pk=agent.user_id).update(
            last_login=now, last_workspace_id=agent.workspace_id
        )
        Agent.objects.filter(pk=agent.pk).update(last_seen_at=now)
    agent.user.last_login = now
    agent.user.last_workspace_id = agent.workspace_id
    agent.last_seen_at = now


def _revoke_refresh_tokens(user: User) -> None:
    """Sign the user out everywhere: blacklist every refresh token they hold."""
    from rest_framework_simplejwt.token_blacklist.models import (
        BlacklistedToken,
        OutstandingToken,
    )

    pending = OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True)
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in pending], ignore_conflicts=True
    )


# A reset token is "<base64 user id>.<Django's reset token>". Django's token hashes the
# user's password hash and last login, so it stops working once used (the password
# changes) and after PASSWORD_RESET_TIMEOUT seconds.
_RESET_TOKEN_SEPARATOR = "."  # noqa: S105 -- a separator, not a secret


def password_reset_token(user: User) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return f"{uid}{_RESET_TOKEN_SEPARATOR}{default_token_generator.make_token(user)}"


def _user_for_reset_token(token: str) -> User | None:
    uid, _, check = token.partition(_RESET_TOKEN_SEPARATOR)
    try:
        user_id = int(force_str(urlsafe_base64_decode(uid)))
    except (ValueError, TypeError):
        return None
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or not default_token_generator.check_token(user, check):
        return None
    return user


def password_reset_request(*, email: str) -> None:
    """Email a reset link if an active account has this address; silently nothing otherwise
    (the caller answers the same either way, so addresses cannot be probed)."""
    user = User.objects.filter(email__iexact=email.strip(), is_active=True).first()
    if user is None:
        return
    link = f"{settings.APP_BASE_URL}/password-reset/confirm?token={password_reset_token(user)}"
    hours = max(1, settings.PASSWORD_RESET_TIMEOUT // 3600)
    _mail_on_commit(
        to=user.email,
        subject="Reset your Enque password",
        body=(
            f"Someone asked to reset the password of your Enque account ({user.email}).\n\n"
            f"To choose a new password, open this link within {hours} hour(s):\n{link}\n\n"
            "The link works once. If you did not ask for this, ignore this email."
        ),
    )


def password_reset_confirm(*, token: str, password: str) -> User:
    """Set a new password with a reset token; every session of the user is signed out."""
    user = _user_for_reset_token(token)
    if user is None:
        raise InvalidInput(
            "This reset link is invalid, used or expired.", code="invalid_token", field="token"
        )
    _validate_password(password, user)
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        _revoke_refresh_tokens(user)
    return user


def _invitation_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _teams_in_workspace(workspace: Workspace, team_ids: Iterable[int]) -> list[Team]:
    wanted = sorted(set(team_ids))
    teams = list(Team.objects.for_workspace(workspace).filter(pk__in=wanted))
    if len(teams) != len(wanted):
        raise InvalidInput(
            "Unknown team in this workspace.", code="invalid_reference", field="team_ids"
        )
    return teams


def invitation_create(
    *,
    workspace: Workspace,
    actor: Agent,
    email: str,
    role: str = AgentRole.AGENT,
    team_ids: Iterable[int] = (),
) -> tuple[Invitation, str]:
    """Invite an address to join as an agent; emails a single-use link valid for
    INVITATION_TIMEOUT seconds. A new invitation revokes the address's pending ones.
    Returns the invitation and its token (only ever sent by email; we keep a hash)."""
    _require_admin(actor, workspace)
    email = _normalise_email(email)
    if role not in AgentRole.values:
        raise InvalidInput(f"Unknown role {role!r}.", code="invalid_choice", field="role")
    if role == AgentRole.OWNER and actor.role != AgentRole.OWNER:
        raise Forbidden("Only an owner may invite another owner.", code="owner_required")
    teams = _teams_in_workspace(workspace, team_ids)
    already = Agent.objects.for_workspace(workspace).filter(user__email=email, is_active=True)
    if already.exists():
        raise Conflict(
            "This address is already an agent of the workspace.",
            code="already_member",
            field="email",
        )
    token = secrets.token_urlsafe(32)
    expires_at = timezone.now() + timedelta(seconds=settings.INVITATION_TIMEOUT)
    with transaction.atomic():
        Invitation.objects.for_workspace(workspace).filter(
            email=email, accepted_at__isnull=True
        ).delete()
        invitation = Invitation.objects.create(
            workspace=workspace,
            email=email,
            role=role,
            team_ids=[team.pk for team in teams],
            token_hash=_invitation_token_hash(token),
            expires_at=expires_at,
            invited_by=actor,
        )
        days = max(1, settings.INVITATION_TIMEOUT // 86400)
        _mail_on_commit(
            to=email,
            subject=f"{actor.name} invited you to {workspace.name} on Enque",
            body=(
                f"{actor.name} invited you to join {workspace.name} on Enque as "
                f"{AgentRole(role).label.lower()}.\n\n"
                f"Accept within {days} day(s):\n"
                f"{settings.APP_BASE_URL}/accept-invite?token={token}\n\n"
                "The link works once."
            ),
        )
    return invitation, token


def _pending_invitation(workspace: Workspace, actor: Agent, invitation: Invitation) -> None:
    _require_admin(actor, workspace)
    _in_workspace(workspace, invitation, what="Invitation")
    # An owner's invitation is an owner's to take back or send again, as inviting one is.
    _require_owner_for(actor, invitation.role)
    if invitation.accepted_at is not None:
        raise Conflict("This invitation was accepted already.", code="invitation_accepted")


def invitation_revoke(*, workspace: Workspace, actor: Agent, invitation: Invitation) -> None:
    """Take back a pending invitation (admins): its link stops working at once."""
    _pending_invitation(workspace, actor, invitation)
    with transaction.atomic():
        Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True).delete()
    logger.info(
        "invitation revoked",
        extra={
            "workspace_id": workspace.pk,
            "invitation_id": invitation.pk,
            "by_agent_id": actor.pk,
        },
    )


def invitation_resend(
    *, workspace: Workspace, actor: Agent, invitation: Invitation
) -> tuple[Invitation, str]:
    """Send a pending (or expired) invitation again: a fresh link and expiry, the old link
    revoked (``invitation_create`` replaces the address's pending invitations). Teams deleted
    since the first sending are left out."""
    _pending_invitation(workspace, actor, invitation)
    team_ids = Team.objects.for_workspace(workspace).filter(pk__in=invitation.team_ids)
    return invitation_create(
        workspace=workspace,
        actor=actor,
        email=invitation.email,
        role=invitation.role,
        team_ids=list(team_ids.values_list("pk", flat=True)),
    )


def invitation_accept(*, token: str, name: str = "", password: str = "") -> tuple[Agent, bool]:
    """Join the workspace an invitation names. A new address becomes a user (``name`` and
    ``password`` required); an existing user just gains the membership, and their name and
    password are never touched. Returns the agent and whether a user was created."""
    invalid = InvalidInput(
        "This invitation link is invalid, used or expired.", code="invalid_token", field="token"
    )
    now = timezone.now()
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_related("workspace")
            .filter(
                token_hash=_invitation_token_hash(token),
                accepted_at__isnull=True,
                expires_at__gt=now,
                workspace__is_active=True,
            )
            .first()
        )
        if invitation is None:
            raise invalid
        user = User.objects.filter(email__iexact=invitation.email).first()
        created = user is None
        if user is None:
            if not name.strip():
                raise InvalidInput("Tell us your name.", code="required", field="name")
            if not password:
                raise InvalidInput("Choose a password.", code="required", field="password")
            _validate_password(password, User(email=invitation.email, name=name.strip()))
        elif not user.is_active:
            raise InvalidInput(
                "This account is deactivated.", code="account_inactive", field="token"
            )
        # Compare-and-swap: of two acceptances of one link, exactly one gets here.
        claimed = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True).update(
            accepted_at=now
        )
        if not claimed:
            raise invalid
        if user is None:
            user = user_create(email=invitation.email, name=name, password=password)
        workspace = invitation.workspace
        agent = Agent.objects.for_workspace(workspace).filter(user=user, is_active=True).first()
        if agent is None:
            # A member already (joined some other way) keeps their role: an invitation must
            # never demote an owner.
            agent = agent_add(workspace=workspace, user=user, role=invitation.role)
        teams = Team.objects.for_workspace(workspace).filter(pk__in=invitation.team_ids)
        TeamMembership.objects.bulk_create(
            [TeamMembership(workspace=workspace, team=team, agent=agent) for team in teams],
            ignore_conflicts=True,
        )
        if created or user.last_workspace_id is None:
            User.objects.filter(pk=user.pk).update(last_workspace=workspace)
    return Agent.objects.select_related("user", "workspace").get(pk=agent.pk), created


def _validate_timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"{name!r} is not a time zone (e.g. Europe/Berlin).",
            code="invalid_choice",
            field="timezone",
        ) from None
    return name


def workspace_update(
    *,
    workspace: Workspace,
    actor: Agent,
    name: str | None = None,
    timezone_name: str | None = None,
    default_signature: str | None = None,
    signup_domains: Iterable[str] | None = None,
) -> Workspace:
    """Change a workspace's settings (owner or admin). None leaves a setting as it is."""
    _require_admin(actor, workspace)
    changes: dict[str, object] = {}
    if name is not None:
        if not name.strip():
            raise InvalidInput("A workspace needs a name.", code="required", field="name")
        changes["name"] = name.strip()
    if timezone_name is not None:
        changes["timezone"] = _validate_timezone(timezone_name)
    if default_signature is not None:
        changes["default_signature"] = default_signature
    if signup_domains is not None:
        domains = sorted({_normalise_domain(d) for d in signup_domains if _normalise_domain(d)})
        for domain in domains:
            if "." not in domain or "@" in domain or " " in domain:
                raise InvalidInput(
                    f"{domain!r} is not a mail domain.", code="invalid", field="signup_domains"
                )
        changes["signup_domains"] = domains
    if not changes:
        return workspace
    with transaction.atomic():
        for field, value in changes.items():
            setattr(workspace, field, value)
        workspace.save(update_fields=[*changes, "updated_at"])
    return workspace


def workspace_delete(*, workspace: Workspace, actor: Agent, confirm: str) -> Workspace:
    """Close a workspace (owner only; ``confirm`` must be its slug).

    A soft delete: the workspace is deactivated, so every token for it stops working at
    once and it leaves every list, but no ticket, mail or customer is destroyed — a
    mistaken deletion can be undone from the admin. Purging its data is a separate,
    deliberate step.
    """
    _require_member(actor, workspace)
    if actor.role != AgentRole.OWNER:
        raise Forbidden("Only an owner may delete the workspace.", code="owner_required")
    if confirm != workspace.slug:
        raise InvalidInput(
            "Type the workspace's slug to confirm the deletion.",
            code="confirmation_mismatch",
            field="confirm",
        )
    with transaction.atomic():
        workspace.is_active = False
        workspace.save(update_fields=["is_active", "updated_at"])
        Invitation.objects.for_workspace(workspace).filter(accepted_at__isnull=True).delete()
    return workspace


# --- People and signatures (the /v1 people API) -------------------------------------------
# Each function takes the workspace and the acting agent, checks the role rule itself
# (whatever the view checked), refuses another workspace's objects, and writes in one
# transaction. Arguments left at ``_UNCHANGED`` keep their current value.

_UNCHANGED: Any = object()

MAX_SIGNATURE_LENGTH = 10_000


def _require_full_agent(actor: Agent, workspace: Workspace) -> None:
    _require_member(actor, workspace)
    if actor.role == AgentRole.LIGHT:
        raise Forbidden(
            "Light agents can read tickets and add internal notes only.", code="light_agent"
        )


def _require_owner_for(actor: Agent, *roles: str) -> None:
    """Granting, revoking or otherwise touching an owner's membership takes an owner."""
    if AgentRole.OWNER in roles and actor.role != AgentRole.OWNER:
        raise Forbidden("Only an owner may change an owner's membership.", code="owner_required")


def _in_workspace(workspace: Workspace, obj: Any, *, what: str) -> None:
    if obj.workspace_id != workspace.pk:
        raise NotFound(f"{what} not found.")


def _clean_text(value: str, *, field: str, max_length: int, required: bool = False) -> str:
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"A {field} is required.", code="required", field=field)
    if len(value) > max_length:
        raise InvalidInput(f"At most {max_length} characters.", code="max_length", field=field)
    return value


def customer_create(
    *,
    workspace: Workspace,
    actor: Agent,
    email: str,
    name: str = "",
    company: Company | None = _UNCHANGED,
    phone: str = "",
    notes: str = "",
) -> Customer:
    """Add a customer by hand (agents and admins). Without ``company``, the customer joins
    the company owning their mail domain, as one who writes in would."""
    _require_full_agent(actor, workspace)
    email = _normalise_email(email)
    if company is _UNCHANGED:
        company = company_for_email(workspace, email)
    ensure_same_workspace(workspace, company, field="company_id")
    fields = {
        "name": _clean_text(name, field="name", max_length=200),
        "phone": _clean_text(phone, field="phone", max_length=50),
        "notes": notes.strip(),
    }
    if Customer.objects.for_workspace(workspace).filter(email__iexact=email).exists():
        raise Conflict("A customer with this email exists.", code="duplicate", field="email")
    try:
        with transaction.atomic():
            return Customer.objects.create(
                workspace=workspace, email=email, company=company, **fields
            )
    except IntegrityError:
        # Created by someone else (or an incoming email) since the check.
        raise Conflict(
            "A customer with this email exists.", code="duplicate", field="email"
        ) from None


def customer_update(
    *,
    workspace: Workspace,
    actor: Agent,
    customer: Customer,
    email: str = _UNCHANGED,
    name: str = _UNCHANGED,
    company: Company | None = _UNCHANGED,
    phone: str = _UNCHANGED,
    notes: str = _UNCHANGED,
) -> Customer:
    _require_full_agent(actor, workspace)
    _in_workspace(workspace, customer, what="Customer")
    changes: dict[str, Any] = {}
    if email is not _UNCHANGED:
        email = _normalise_email(email)
        taken = (
            Customer.objects.for_workspace(workspace)
            .filter(email__iexact=email)
            .exclude(pk=customer.pk)
        )
        if taken.exists():
            raise Conflict("A customer with this email exists.", code="duplicate", field="email")
        changes["email"] = email
    if name is not _UNCHANGED:
        changes["name"] = _clean_text(name, field="name", max_length=200)
    if phone is not _UNCHANGED:
        changes["phone"] = _clean_text(phone, field="phone", max_length=50)
    if notes is not _UNCHANGED:
        changes["notes"] = notes.strip()
    if company is not _UNCHANGED:
        ensure_same_workspace(workspace, company, field="company_id")
        changes["company"] = company
    if not changes:
        return customer
    for field, value in changes.items():
        setattr(customer, field, value)
    try:
        with transaction.atomic():
            customer.save(update_fields=[*changes, "updated_at"])
    except IntegrityError:
        raise Conflict(
            "A customer with this email exists.", code="duplicate", field="email"
        ) from None
    return customer


def customer_delete(*, workspace: Workspace, actor: Agent, customer: Customer) -> None:
    """Delete a customer who never wrote in (admins).

    A customer with tickets (deleted ones included) is refused with 409
    ``customer_has_tickets``: the tickets are the workspace's record of the conversation,
    and ``Ticket.customer`` is protected so that no cascade can silently erase them.
    """
    from tickets.models import Ticket

    _require_admin(actor, workspace)
    _in_workspace(workspace, customer, what="Customer")
    with transaction.atomic():
        # Lock the row: a ticket created for this customer meanwhile would fail on the
        # protected foreign key rather than lose its customer.
        locked = Customer.objects.select_for_update().filter(pk=customer.pk).first()
        if locked is None:
            return
        if Ticket.objects.for_workspace(workspace).filter(customer=locked).exists():
            raise Conflict(
                "This customer has tickets; it cannot be deleted.", code="customer_has_tickets"
            )
        locked.delete()


def company_update(
    *,
    workspace: Workspace,
    actor: Agent,
    company: Company,
    name: str = _UNCHANGED,
    notes: str = _UNCHANGED,
    domains: Iterable[str] = _UNCHANGED,
) -> Company:
    _require_admin(actor, workspace)
    _in_workspace(workspace, company, what="Company")
    changes: dict[str, Any] = {}
    if name is not _UNCHANGED:
        name = _clean_text(name, field="name", max_length=200, required=True)
        taken = (
            Company.objects.for_workspace(workspace)
            .filter(name__iexact=name)
            .exclude(pk=company.pk)
        )
        if taken.exists():
            raise Conflict("A company with this name exists.", code="duplicate", field="name")
        changes["name"] = name
    if notes is not _UNCHANGED:
        changes["notes"] = notes.strip()
    try:
        with transaction.atomic():
            if changes:
                for field, value in changes.items():
                    setattr(company, field, value)
                company.save(update_fields=[*changes, "updated_at"])
            if domains is not _UNCHANGED:
                company_set_domains(company=company, domains=domains)
    except IntegrityError:
        raise Conflict(
            "A company with this name or domain exists.", code="duplicate", field="name"
        ) from None
    return company


def company_delete(*, workspace: Workspace, actor: Agent, company: Company) -> None:
    """Delete a company (admins). Its customers stay, without a company; its tickets lose
    the company with a history row each (and a fresh ``updated_at`` for the export)."""
    from tickets.actors import Actor
    from tickets.services import tickets_clear_reference

    _require_admin(actor, workspace)
    _in_workspace(workspace, company, what="Company")
    with transaction.atomic():
        tickets_clear_reference(
            workspace_id=workspace.pk,
            actor=Actor.for_agent(actor),
            field="company",
            value_id=company.pk,
            reason="company_deleted",
        )
        company.delete()


def agent_change_role(*, workspace: Workspace, actor: Agent, agent: Agent, role: str) -> Agent:
    """Change an agent's role (admins). Only an owner grants or revokes ``owner``; the last
    active owner cannot be demoted (409 ``last_owner``)."""
    _require_admin(actor, workspace)
    _in_workspace(workspace, agent, what="Agent")
    if role not in AgentRole.values:
        raise InvalidInput(f"Unknown role {role!r}.", code="invalid_choice", field="role")
    _require_owner_for(actor, agent.role, role)
    if agent.role == role:
        return agent
    agent_set_role(agent=agent, role=role)
    logger.info(
        "agent role changed",
        extra={
            "workspace_id": workspace.pk,
            "agent_id": agent.pk,
            "role": role,
            "by_agent_id": actor.pk,
        },
    )
    return agent


def agent_set_active(*, workspace: Workspace, actor: Agent, agent: Agent, active: bool) -> Agent:
    """Deactivate or reactivate a membership (admins).

    Deactivating locks the agent's tokens out at once and leaves their tickets unassigned
    (``agent_deactivate``); their team memberships are kept for a reactivation. Only an
    owner deactivates or reactivates an owner; nobody deactivates themselves (an admin
    would lock themselves out; the last owner stays protected by ``last_owner`` too).
    """
    _require_admin(actor, workspace)
    _in_workspace(workspace, agent, what="Agent")
    _require_owner_for(actor, agent.role)
    if agent.is_active == active:
        return agent
    if not active:
        if agent.pk == actor.pk:
            raise Conflict("You cannot deactivate yourself.", code="self_deactivation")
        agent_deactivate(agent=agent)
    else:
        # save(), not a queryset update: the ticket panel's cache hears of it (ui/panel.py).
        agent.is_active = True
        agent.save(update_fields=["is_active", "updated_at"])
    logger.info(
        "agent %s",
        "reactivated" if active else "deactivated",
        extra={"workspace_id": workspace.pk, "agent_id": agent.pk, "by_agent_id": actor.pk},
    )
    return agent


def team_update(
    *,
    workspace: Workspace,
    actor: Agent,
    team: Team,
    name: str = _UNCHANGED,
    description: str = _UNCHANGED,
    teams_webhook_url: str = _UNCHANGED,
) -> Team:
    """Rename or describe a team, or set its Microsoft Teams webhook ("" removes it)."""
    _require_admin(actor, workspace)
    _in_workspace(workspace, team, what="Team")
    changes: dict[str, Any] = {}
    if name is not _UNCHANGED:
        name = _clean_text(name, field="name", max_length=120, required=True)
        taken = Team.objects.for_workspace(workspace).filter(name__iexact=name).exclude(pk=team.pk)
        if taken.exists():
            raise Conflict("A team with this name exists.", code="duplicate", field="name")
        changes["name"] = name
    if description is not _UNCHANGED:
        changes["description"] = description.strip()
    if teams_webhook_url is not _UNCHANGED:
        changes["teams_webhook_url"] = _teams_webhook_url(teams_webhook_url)
    if not changes:
        return team
    for field, value in changes.items():
        setattr(team, field, value)
    try:
        with transaction.atomic():
            team.save(update_fields=[*changes, "updated_at"])
    except IntegrityError:
        raise Conflict("A team with this name exists.", code="duplicate", field="name") from None
    return team


MAX_WEBHOOK_URL_LENGTH = 2000


def _teams_webhook_url(url: str) -> str:
    """A Microsoft Teams incoming-webhook URL, or "" for none. HTTPS only: the URL is a
    secret that posts into a channel, and notifications carry ticket subjects."""
    url = url.strip()
    if not url:
        return ""
    if len(url) > MAX_WEBHOOK_URL_LENGTH:
        raise InvalidInput(
            f"At most {MAX_WEBHOOK_URL_LENGTH} characters.",
            code="max_length",
            field="teams_webhook_url",
        )
    try:
        URLValidator(schemes=["https"])(url)
    except DjangoValidationError:
        raise InvalidInput(
            "Paste the webhook's https:// URL from Microsoft Teams.",
            code="invalid",
            field="teams_webhook_url",
        ) from None
    return url


def team_delete(*, workspace: Workspace, actor: Agent, team: Team) -> None:
    """Delete a team (admins); its tickets lose the team with a history row each."""
    from tickets.actors import Actor
    from tickets.services import tickets_clear_reference

    _require_admin(actor, workspace)
    _in_workspace(workspace, team, what="Team")
    with transaction.atomic():
        tickets_clear_reference(
            workspace_id=workspace.pk,
            actor=Actor.for_agent(actor),
            field="team",
            value_id=team.pk,
            reason="team_deleted",
        )
        team.delete()


def team_change_members(
    *,
    workspace: Workspace,
    actor: Agent,
    team: Team,
    agents: Iterable[Agent],
    replace: bool,
) -> Team:
    """Set a team's members to ``agents`` (``replace``) or add them to it (admins)."""
    _require_admin(actor, workspace)
    _in_workspace(workspace, team, what="Team")
    agents = list(agents)
    for agent in agents:
        ensure_same_workspace(workspace, agent, field="agent_ids")
    with transaction.atomic():
        if replace:
            team_set_members(team=team, members=agents)
        else:
            TeamMembership.objects.bulk_create(
                [TeamMembership(workspace=workspace, team=team, agent=agent) for agent in agents],
                ignore_conflicts=True,
            )
        Team.objects.filter(pk=team.pk).update(updated_at=timezone.now())
    return team


def signature_set_workspace(*, workspace: Workspace, actor: Agent, signature: str) -> Workspace:
    """The workspace's default signature (admins), sanitised like every stored HTML."""
    from tickets.services import sanitize_html

    _require_admin(actor, workspace)
    signature = sanitize_html(signature.strip())
    if len(signature) > MAX_SIGNATURE_LENGTH:
        raise InvalidInput(
            f"At most {MAX_SIGNATURE_LENGTH} characters.", code="max_length", field="signature"
        )
    with transaction.atomic():
        workspace.default_signature = signature
        workspace.save(update_fields=["default_signature", "updated_at"])
    return workspace


def signature_set_agent(
    *, workspace: Workspace, actor: Agent, agent: Agent, signature: str
) -> Agent:
    """An agent's own signature: set by themselves, or by an admin of the workspace."""
    from tickets.services import sanitize_html

    _require_member(actor, workspace)
    _in_workspace(workspace, agent, what="Agent")
    if agent.pk != actor.pk and not actor.is_admin:
        raise Forbidden(
            "Only an owner or admin may change another agent's signature.",
            code="admin_required",
        )
    signature = sanitize_html(signature.strip())
    if len(signature) > MAX_SIGNATURE_LENGTH:
        raise InvalidInput(
            f"At most {MAX_SIGNATURE_LENGTH} characters.", code="max_length", field="signature"
        )
    with transaction.atomic():
        agent.signature = signature
        agent.save(update_fields=["signature", "updated_at"])
    return agent
