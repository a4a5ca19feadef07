"""Tenants and people.

``Workspace`` is the tenant. Every tenant-owned row elsewhere inherits ``TenantModel``: a
non-null ``workspace`` foreign key, timestamps, and a queryset with ``.for_workspace()``.
``User`` is a login identity (one per email address); an ``Agent`` is a user's membership
in one workspace, with a role. ``Customer`` is an external person who writes in.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from enque.encryption import EncryptedTextField


class Workspace(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    # Reports, SLA clocks and business hours are computed in this zone.
    timezone = models.CharField(max_length=64, default="UTC")
    # Outgoing replies end with the agent's own signature, else this one.
    default_signature = models.TextField(blank=True)
    # Microsoft sign-in may create an account only for addresses in these domains.
    signup_domains = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TenantQuerySet(models.QuerySet):
    def for_workspace(self, workspace: Workspace | int) -> TenantQuerySet:
        workspace_id = workspace if isinstance(workspace, int) else workspace.pk
        return self.filter(workspace_id=workspace_id)


class TenantModel(models.Model):
    """The base of every tenant-owned model (a test walks all models to enforce it)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, username: str) -> User:
        return self.get(email__iexact=username)

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("A user needs an email address.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A login identity. Global, not tenant-owned: one person, many workspaces."""

    # Stored lowercased; the case-insensitive constraint below also guards raw writes.
    email = models.EmailField(max_length=254, unique=True)
    name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    # Staff may use the Django admin; what they see there is limited to their workspaces.
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    # Login without a named workspace lands in the one used most recently.
    last_workspace = models.ForeignKey(
        Workspace, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Azure AD object id, set by Microsoft sign-in.
    microsoft_oid = models.CharField(max_length=64, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
            models.UniqueConstraint(
                fields=["microsoft_oid"],
                condition=~models.Q(microsoft_oid=""),
                name="user_microsoft_oid_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.email

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)

    def get_full_name(self) -> str:
        return self.name or self.email

    def get_short_name(self) -> str:
        return (self.name or self.email).split()[0]


class AgentRole(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    AGENT = "agent", "Agent"
    # Read everything and add internal notes; never reply to customers or change tickets.
    LIGHT = "light", "Light agent"


class Agent(TenantModel):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="agents")
    role = models.CharField(max_length=10, choices=AgentRole.choices, default=AgentRole.AGENT)
    # Display name inside this workspace; falls back to the user's name.
    display_name = models.CharField(max_length=200, blank=True)
    signature = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["workspace", "display_name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "user"], name="agent_unique_per_workspace"
            ),
        ]
        indexes = [
            # Assignment pickers and round-robin list a workspace's active agents.
            models.Index(fields=["workspace", "is_active"], name="agent_ws_active_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return self.name_from(self.display_name, self.user.name, self.user.email)

    @staticmethod
    def name_from(display_name: str, user_name: str, user_email: str) -> str:
        """An agent's name from its columns, for reads that load no Agent (values())."""
        return display_name or user_name or user_email

    @property
    def is_admin(self) -> bool:
        return self.role in (AgentRole.OWNER, AgentRole.ADMIN)

    @property
    def can_reply(self) -> bool:
        return self.role != AgentRole.LIGHT


class Team(TenantModel):
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    members = models.ManyToManyField(Agent, through="TeamMembership", related_name="teams")
    # Optional Microsoft Teams incoming webhook for this team's notifications. Anyone with
    # the URL can post to the channel, so it is a secret: encrypted at rest.
    teams_webhook_url = EncryptedTextField(blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint("workspace", Lower("name"), name="team_name_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class TeamMembership(TenantModel):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="team_memberships")

    class Meta(TenantModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["team", "agent"], name="team_membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.agent} in {self.team}"


class Company(TenantModel):
    name = models.CharField(max_length=200)
    notes = models.TextField(blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["name", "id"]
        verbose_name_plural = "companies"
        constraints = [
            models.UniqueConstraint("workspace", Lower("name"), name="company_name_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class CompanyDomain(TenantModel):
    """A mail domain of a company: new customers from it join the company."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(max_length=253)

    class Meta(TenantModel.Meta):
        ordering = ["domain"]
        constraints = [
            # One company per domain per workspace; stored lowercased by the services.
            models.UniqueConstraint(fields=["workspace", "domain"], name="company_domain_unique"),
        ]

    def __str__(self) -> str:
        return self.domain


class Customer(TenantModel):
    """An external person who writes in (the original service's "Users")."""

    email = models.EmailField(max_length=254)
    name = models.CharField(max_length=200, blank=True)
    company = models.ForeignKey(
        Company, null=True, blank=True, on_delete=models.SET_NULL, related_name="customers"
    )
    phone = models.CharField(max_length=50, blank=True)
    notes = models.TextField(blank=True)
    # Set when mail to this address bounced; cleared when they write again.
    email_bounced_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["name", "email", "id"]
        constraints = [
            models.UniqueConstraint("workspace", Lower("email"), name="customer_email_ci_unique"),
        ]
        indexes = [
            # Customer list and company page: a company's customers.
            models.Index(fields=["workspace", "company"], name="customer_ws_company_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)

    @property
    def display_name(self) -> str:
        return self.name or self.email

    @property
    def first_name(self) -> str:
        return (self.name.split() or [self.email.split("@")[0]])[0]


class Invitation(TenantModel):
    """An emailed, single-use invitation to join a workspace as an agent.

    Only a SHA-256 of the emailed token is stored, so a database leak yields no usable
    link. Accepting sets ``accepted_at`` with a compare-and-swap update: a link works once.
    """

    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=10, choices=AgentRole.choices, default=AgentRole.AGENT)
    # Teams joined on acceptance; checked against the workspace when inviting and again
    # when accepting (a team deleted in between is skipped).
    team_ids = models.JSONField(default=list, blank=True)
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    invited_by = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(TenantModel.Meta):
        indexes = [
            # Re-inviting an address revokes its pending invitations in that workspace.
            models.Index(fields=["workspace", "email"], name="invitation_ws_email_idx"),
        ]

    def __str__(self) -> str:
        return f"Invitation of {self.email} as {self.role}"

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.expires_at > timezone.now()


class IdempotencyKey(TenantModel):
    """A POST's ``Idempotency-Key`` and the first response it produced (enque.api.idempotency).

    A row, not a cache entry: it survives a Redis restart or eviction for its whole 24 hours,
    and the unique constraint lets exactly one of two concurrent first attempts run.
    """

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # SHA-256 of method, path and canonical body: the same key with another request is a 409.
    fingerprint = models.CharField(max_length=64)
    # Null while the first attempt runs; then the response replayed to every retry.
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    expires_at = models.DateTimeField()

    class Meta(TenantModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["agent", "key"], name="idempotency_key_unique"),
        ]
        indexes = [
            # The hourly purge deletes expired rows across all workspaces.
            models.Index(fields=["expires_at"], name="idempotency_key_expiry_idx"),
        ]

    def __str__(self) -> str:
        return self.key
