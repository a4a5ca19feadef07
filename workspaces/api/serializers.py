"""Input and output serializers of the workspaces API. Input serializers validate shape
only; rules (roles, uniqueness, password strength, same-workspace references) live in the
services, whose typed errors the API renders with the offending field."""

from __future__ import annotations

import zoneinfo
from typing import Any

from rest_framework import serializers

from enque.api.fields import id_field
from workspaces.models import AgentRole

# --- Output ----------------------------------------------------------------------------


class UserOutput(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField()


class WorkspaceOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.SlugField()
    timezone = serializers.CharField()
    default_signature = serializers.CharField()
    signup_domains = serializers.ListField(child=serializers.CharField())
    # The caller's role in this workspace (selectors.workspaces_of_user annotates it).
    role = serializers.ChoiceField(choices=AgentRole.choices, source="caller_role")
    created_at = serializers.DateTimeField()


class AgentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    user_id = serializers.IntegerField()
    workspace_id = serializers.IntegerField()
    name = serializers.CharField(help_text="Display name, else the user's name or email.")
    display_name = serializers.CharField()
    email = serializers.EmailField(source="user.email")
    role = serializers.ChoiceField(choices=AgentRole.choices)
    is_active = serializers.BooleanField()


class TokenPairOutput(serializers.Serializer):
    access = serializers.CharField(help_text="Send as `Authorization: Bearer <access>`.")
    refresh = serializers.CharField(help_text="Trade at /v1/auth/refresh for a new pair.")


class SessionOutput(TokenPairOutput):
    agent = AgentOutput()
    workspace = WorkspaceOutput()


class MeOutput(serializers.Serializer):
    user = UserOutput()
    agent = AgentOutput()
    role = serializers.ChoiceField(choices=AgentRole.choices)
    workspace = WorkspaceOutput()


class AcceptInviteOutput(serializers.Serializer):
    agent = AgentOutput()
    workspace = WorkspaceOutput()
    access = serializers.CharField(
        allow_null=True,
        help_text="Tokens for a newly created account; null for an existing "
        "user, who signs in with their own password.",
    )
    refresh = serializers.CharField(allow_null=True)


class DetailOutput(serializers.Serializer):
    detail = serializers.CharField()


class InvitationOutput(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=AgentRole.choices)
    team_ids = serializers.ListField(child=serializers.IntegerField())
    expires_at = serializers.DateTimeField()
    invited_by_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


# --- Input -----------------------------------------------------------------------------


def password_field(**kwargs: Any) -> serializers.CharField:
    # Passwords are taken exactly as typed (no trimming) and never echoed back.
    return serializers.CharField(
        write_only=True,
        trim_whitespace=False,
        max_length=128,
        style={"input_type": "password"},
        **kwargs,
    )


class RegisterInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    email = serializers.EmailField(max_length=254)
    password = password_field()
    workspace_name = serializers.CharField(max_length=200)


class LoginInput(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = password_field()
    workspace_id = id_field(
        required=False, help_text="Sign in to this workspace; default: the last used."
    )


class RefreshInput(serializers.Serializer):
    refresh = serializers.CharField()


class SwitchWorkspaceInput(serializers.Serializer):
    workspace_id = id_field()


class PasswordResetInput(serializers.Serializer):
    email = serializers.EmailField(max_length=254)


class PasswordResetConfirmInput(serializers.Serializer):
    token = serializers.CharField(max_length=500)
    password = password_field()


class AcceptInviteInput(serializers.Serializer):
    token = serializers.CharField(max_length=500)
    name = serializers.CharField(max_length=200, required=False, default="")
    password = password_field(required=False, default="")


class InviteInput(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=AgentRole.choices, default=AgentRole.AGENT)
    team_ids = serializers.ListField(child=id_field(), required=False, default=list, max_length=100)


def _time_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise serializers.ValidationError("Not a time zone (e.g. Europe/Berlin).") from None
    return value


class WorkspaceCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    timezone = serializers.CharField(max_length=64, default="UTC", validators=[_time_zone])


class WorkspaceUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    timezone = serializers.CharField(max_length=64, required=False)
    default_signature = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=10_000
    )
    signup_domains = serializers.ListField(
        child=serializers.CharField(max_length=253), required=False, max_length=100
    )


class WorkspaceDeleteInput(serializers.Serializer):
    confirm = serializers.CharField(help_text="The workspace's slug, typed to confirm.")


class WorkspaceDeleteQuery(serializers.Serializer):
    confirm = serializers.CharField(
        required=False, help_text="The workspace's slug; or send it in the body instead."
    )
