"""``/v1/notifications`` (the caller's own, newest first) and
``/v1/notification-preferences`` (per kind: in-app and email).

Every member, light agents included, reads and marks their own notifications; another
agent's notification is a 404. New ones are also pushed live on the realtime channel
``agent:me`` as ``notification.created`` events whose ``data`` is the object below.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from automation import notifications, selectors, services
from automation.models import (
    DIGEST_KINDS,
    Notification,
    NotificationKind,
    NotificationPreference,
)
from workspaces.models import Workspace
from workspaces.people_api.base import PeopleViewSet


class NotificationOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=NotificationKind.choices)
    ticket = serializers.IntegerField(
        allow_null=True, source="data.ticket_number", default=None, help_text="Its number."
    )
    data = serializers.DictField(help_text='{"message": ..., "subject": ..., ...}')
    read_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class NotificationListQuery(serializers.Serializer):
    unread = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="true: unread only."
    )


class CountOutput(serializers.Serializer):
    count = serializers.IntegerField()


class NotificationViewSet(PeopleViewSet):
    model = Notification
    output_serializer_class = NotificationOutput
    output_serializers = {"read_all": CountOutput, "unread_count": CountOutput}
    query_serializers = {"list": NotificationListQuery}
    light_agent_actions = frozenset({"read", "read_all"})

    def get_workspace_queryset(self, workspace: Workspace) -> QuerySet[Notification]:
        return selectors.notifications_for(agent=self.agent, unread=self.query.get("unread"))

    @extend_schema(summary="My notifications", description="Newest first; `unread=true`.")
    def list(self, request: Request) -> Response:
        return self.paginated(self.get_queryset())

    @extend_schema(summary="A notification of mine")
    def retrieve(self, request: Request, pk: str) -> Response:
        return self.output(self.get_object())

    @extend_schema(summary="Mark a notification read", request=None)
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str) -> Response:
        notification = services.notification_mark_read(
            agent=self.agent, notification=self.get_object()
        )
        return self.output(notification)

    @extend_schema(summary="Mark all my notifications read", request=None)
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request: Request) -> Response:
        return self.output({"count": services.notifications_mark_all_read(agent=self.agent)})

    @extend_schema(summary="How many of my notifications are unread")
    @action(detail=False, methods=["get"], url_path="unread-count")
    def unread_count(self, request: Request) -> Response:
        count = selectors.notifications_for(agent=self.agent, unread=True).count()
        return self.output({"count": count})


class PreferenceSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=NotificationKind.choices)
    in_app = serializers.BooleanField(
        required=False, help_text="Digests are email only: always false for them."
    )
    email = serializers.BooleanField(required=False)


class PreferencesInput(serializers.Serializer):
    preferences = PreferenceSerializer(many=True)


class PreferencesOutput(serializers.Serializer):
    preferences = PreferenceSerializer(many=True)


class NotificationPreferenceViewSet(PeopleViewSet):
    """``GET`` / ``PATCH /v1/notification-preferences`` (routed in enque/api/urls.py as
    ``{"get": "show", "patch": "change"}``): every kind, with its value or the default."""

    model = NotificationPreference
    output_serializer_class = PreferencesOutput
    input_serializers = {"change": PreferencesInput}
    light_agent_actions = frozenset({"change"})

    def get_workspace_queryset(self, workspace: Workspace) -> QuerySet[NotificationPreference]:
        return NotificationPreference.objects.filter(agent=self.agent)

    def _all(self) -> dict[str, Any]:
        chosen = {p.kind: p for p in self.get_queryset()}
        rows = []
        for kind in NotificationKind.values:
            in_app, email = notifications.DEFAULT_PREFERENCES[kind]
            if kind in chosen:
                in_app, email = chosen[kind].in_app, chosen[kind].email
            rows.append(
                {"kind": kind, "in_app": in_app and kind not in DIGEST_KINDS, "email": email}
            )
        return {"preferences": rows}

    @extend_schema(summary="My notification preferences", description="Every kind.")
    def show(self, request: Request) -> Response:
        return self.output(self._all())

    @extend_schema(
        summary="Change my notification preferences",
        description="Only the kinds (and channels) given change.",
    )
    def change(self, request: Request) -> Response:
        for item in self.validated_input()["preferences"]:
            item = dict(item)
            services.notification_preference_set(
                agent=self.agent,
                kind=item.pop("kind"),
                **item,
            )
        return self.output(self._all())
