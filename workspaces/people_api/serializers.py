"""Input, output and query serializers of the people API.

Input serializers check shape only (types, lengths, formats); the rules — roles, uniqueness,
same-workspace references — are the services' and the views' checked fetches, which answer
with the offending field. Output serializers read what the selectors prefetched and never
query on their own.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from enque.api.fields import id_field
from tickets.models import TicketChannel, TicketPriority, TicketStatus
from workspaces.api.serializers import AgentOutput
from workspaces.models import AgentRole

NOTES_MAX_LENGTH = 10_000
SEARCH_MAX_LENGTH = 200


# --- Embedded references -------------------------------------------------------------------


class NamedRefOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class CompanyRefOutput(NamedRefOutput):
    pass


class TeamRefOutput(NamedRefOutput):
    pass


class AgentRefOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(help_text="Display name, else the user's name or email.")
    email = serializers.EmailField(source="user.email")


class CustomerRefOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.EmailField()


# --- Customers -----------------------------------------------------------------------------


class CustomerOutput(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField()
    display_name = serializers.CharField(help_text="The name, else the email address.")
    phone = serializers.CharField()
    notes = serializers.CharField()
    company = CompanyRefOutput(allow_null=True)
    email_bounced_at = serializers.DateTimeField(
        allow_null=True, help_text="Set when mail to this address bounced."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class CustomerCreateInput(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    company_id = id_field(
        required=False,
        allow_null=True,
        help_text="A company of this workspace; omitted: the company owning the email's "
        "domain, if any; null: none.",
    )
    phone = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    notes = serializers.CharField(
        max_length=NOTES_MAX_LENGTH, required=False, allow_blank=True, default=""
    )


class CustomerUpdateInput(serializers.Serializer):
    email = serializers.EmailField(max_length=254, required=False)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    company_id = id_field(required=False, allow_null=True, help_text="null removes the company.")
    phone = serializers.CharField(max_length=50, required=False, allow_blank=True)
    notes = serializers.CharField(max_length=NOTES_MAX_LENGTH, required=False, allow_blank=True)


class CustomerListQuery(serializers.Serializer):
    q = serializers.CharField(
        max_length=SEARCH_MAX_LENGTH,
        required=False,
        help_text="Search in names and email addresses (case-insensitive, substring).",
    )
    company = id_field(required=False, help_text="Only the customers of this company (its id).")


# --- Companies -----------------------------------------------------------------------------


class CompanyOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    notes = serializers.CharField()
    domains = serializers.SerializerMethodField(
        help_text="Mail domains: new customers from them join this company."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_domains(self, company: object) -> list[str]:
        # Reads the prefetched rows (selectors.company_list); .all() keeps the prefetch.
        return [d.domain for d in company.domains.all()]  # type: ignore[attr-defined]


def _domains_field(**kwargs: object) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=253),
        max_length=100,
        help_text="Mail domains such as example.com (lowercased; one company per domain).",
        **kwargs,
    )


class CompanyCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    notes = serializers.CharField(
        max_length=NOTES_MAX_LENGTH, required=False, allow_blank=True, default=""
    )
    domains = _domains_field(required=False, default=list)


class CompanyUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    notes = serializers.CharField(max_length=NOTES_MAX_LENGTH, required=False, allow_blank=True)
    domains = _domains_field(required=False)


class CompanyListQuery(serializers.Serializer):
    q = serializers.CharField(
        max_length=SEARCH_MAX_LENGTH,
        required=False,
        help_text="Search in names and domains (case-insensitive, substring).",
    )


# --- Tickets of a customer or company ------------------------------------------------------


class TicketSummaryOutput(serializers.Serializer):
    number = serializers.IntegerField(help_text="The ticket's number in this workspace.")
    subject = serializers.CharField()
    status = serializers.ChoiceField(choices=TicketStatus.choices)
    priority = serializers.ChoiceField(choices=TicketPriority.choices)
    channel = serializers.ChoiceField(choices=TicketChannel.choices)
    customer = CustomerRefOutput()
    assignee = AgentRefOutput(allow_null=True)
    team = TeamRefOutput(allow_null=True)
    category = NamedRefOutput(allow_null=True)
    tags = serializers.SerializerMethodField(help_text="Tag names.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_tags(self, ticket: object) -> list[str]:
        # The prefetched tags (selectors.ticket_summaries), already in name order.
        return [tag.name for tag in ticket.tags.all()]  # type: ignore[attr-defined]


class PageQuery(serializers.Serializer):
    """A paginated sub-list's parameters (the paginator validates them too)."""

    cursor = serializers.CharField(
        required=False, help_text="Opaque position from a previous page's `next` or `previous`."
    )
    page_size = serializers.IntegerField(
        min_value=1, max_value=100, required=False, help_text="Items per page (default 25)."
    )


# --- Agents and teams ----------------------------------------------------------------------


class AgentDetailOutput(AgentOutput):
    teams = TeamRefOutput(many=True)
    last_seen_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class AgentUpdateInput(serializers.Serializer):
    role = serializers.ChoiceField(
        choices=AgentRole.choices,
        help_text="Only an owner grants or revokes `owner`; the last owner keeps it (409).",
    )


class AgentListQuery(serializers.Serializer):
    q = serializers.CharField(
        max_length=SEARCH_MAX_LENGTH,
        required=False,
        help_text="Search in display names, names and email addresses.",
    )
    role = serializers.ChoiceField(choices=AgentRole.choices, required=False)
    is_active = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="Active or deactivated only."
    )
    team = id_field(required=False, help_text="Members of a team.")


class TeamMemberOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.EmailField(source="user.email")
    role = serializers.ChoiceField(choices=AgentRole.choices)
    is_active = serializers.BooleanField()


class TeamOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    members = TeamMemberOutput(many=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


def _agent_ids_field(**kwargs: object) -> serializers.ListField:
    return serializers.ListField(
        child=id_field(),
        max_length=1000,
        help_text="Ids of agents of this workspace.",
        **kwargs,
    )


class TeamCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(
        max_length=NOTES_MAX_LENGTH, required=False, allow_blank=True, default=""
    )
    agent_ids = _agent_ids_field(required=False, default=list)


class TeamUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False)
    description = serializers.CharField(
        max_length=NOTES_MAX_LENGTH, required=False, allow_blank=True
    )


class TeamMembersInput(serializers.Serializer):
    agent_ids = _agent_ids_field(allow_empty=True)


class TeamListQuery(serializers.Serializer):
    q = serializers.CharField(
        max_length=SEARCH_MAX_LENGTH, required=False, help_text="Search in team names."
    )


# --- Signatures ----------------------------------------------------------------------------


class SignatureInput(serializers.Serializer):
    signature = serializers.CharField(
        max_length=10_000,
        allow_blank=True,
        trim_whitespace=False,
        help_text="HTML; sanitised (scripts, event handlers and unsafe links removed).",
    )


class SignatureOutput(serializers.Serializer):
    signature = serializers.CharField()


class AgentSignatureOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.EmailField(source="user.email")
    signature = serializers.CharField()


# One object, though the list action answers it (spectacular would document an array).
@extend_schema_serializer(many=False)
class SignaturesOutput(serializers.Serializer):
    workspace = serializers.CharField(
        help_text="The workspace's default signature, used when an agent has none."
    )
    agents = AgentSignatureOutput(many=True, help_text="Each active agent's own signature.")
