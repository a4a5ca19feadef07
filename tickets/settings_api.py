"""``/v1/categories``, ``/v1/tags`` and ``/v1/canned-replies``: the settings agents use on
tickets.

Any member reads categories and tags; admins write them, and names are unique per
workspace in any case (409 ``duplicate``). Canned replies are shared (admins write them) or
personal (``owner`` = the agent; only they see and edit it): an agent lists the shared ones
and their own. ``POST /v1/canned-replies/:id/render`` fills a reply's placeholders for a
ticket (``tickets.placeholders``) and counts the use.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from enque.api.fields import id_field
from enque.api.permissions import IsAdminRole
from enque.errors import InvalidInput
from tickets import services
from tickets.models import CannedReply, Category, Tag, Ticket
from tickets.placeholders import PLACEHOLDERS
from workspaces.models import Agent, Workspace
from workspaces.people_api.base import NO_CONTENT, PeopleViewSet
from workspaces.people_api.serializers import NamedRefOutput
from workspaces.selectors import reference_in_workspace

SEARCH_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 10_000


# --- Selectors -----------------------------------------------------------------------------


def category_list(*, workspace: Workspace, q: str = "") -> QuerySet[Category]:
    # One query.
    categories = Category.objects.for_workspace(workspace)
    return categories.filter(name__icontains=q) if q else categories


def tag_list(*, workspace: Workspace, q: str = "") -> QuerySet[Tag]:
    # One query.
    tags = Tag.objects.for_workspace(workspace)
    return tags.filter(name__icontains=q) if q else tags


def canned_replies_for(
    *,
    agent: Agent,
    q: str = "",
    category: Category | None = None,
    scope: str = "all",
) -> QuerySet[CannedReply]:
    """The canned replies ``agent`` sees: the shared ones and their own personal ones.

    One query: the replies joined to their category and owner (and the owner's user).
    """
    replies = (
        CannedReply.objects.for_workspace(agent.workspace_id)
        .filter(Q(owner__isnull=True) | Q(owner=agent))
        .select_related("category", "owner__user")
    )
    if scope == "shared":
        replies = replies.filter(owner__isnull=True)
    elif scope == "personal":
        replies = replies.filter(owner=agent)
    if category is not None:
        replies = replies.filter(category=category)
    if q:
        replies = replies.filter(Q(title__icontains=q) | Q(body__icontains=q))
    return replies


# --- Serializers ---------------------------------------------------------------------------


def _search_field(help_text: str) -> serializers.CharField:
    return serializers.CharField(max_length=SEARCH_MAX_LENGTH, required=False, help_text=help_text)


class CategoryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class CategoryCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(
        max_length=DESCRIPTION_MAX_LENGTH, required=False, allow_blank=True, default=""
    )


class CategoryUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False)
    description = serializers.CharField(
        max_length=DESCRIPTION_MAX_LENGTH, required=False, allow_blank=True
    )


class CategoryListQuery(serializers.Serializer):
    q = _search_field("Search in category names.")


class TagOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    color = serializers.CharField(help_text="Hex colour such as #3b82f6, or empty.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


def _color_field(**kwargs: Any) -> serializers.RegexField:
    return serializers.RegexField(
        r"^#[0-9a-fA-F]{6}$",
        allow_blank=True,
        max_length=7,
        error_messages={"invalid": "A colour is a hex code such as #3b82f6."},
        help_text="Hex colour such as #3b82f6; empty for none.",
        **kwargs,
    )


class TagCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=services.MAX_TAG_LENGTH)
    color = _color_field(required=False, default="")


class TagUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=services.MAX_TAG_LENGTH, required=False)
    color = _color_field(required=False)


class TagListQuery(serializers.Serializer):
    q = _search_field("Search in tag names.")


class CannedReplyOwnerOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class CannedReplyOutput(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    body = serializers.CharField(
        help_text="Plain text with placeholders such as {{customer.first_name}}."
    )
    category = NamedRefOutput(allow_null=True)
    shared = serializers.SerializerMethodField(
        help_text="Shared with the workspace (admins edit it), or personal to `owner`."
    )
    owner = CannedReplyOwnerOutput(allow_null=True)
    usage_count = serializers.IntegerField(help_text="How many times it was rendered.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_shared(self, canned: CannedReply) -> bool:
        return canned.owner_id is None


PLACEHOLDER_HELP = "Placeholders: " + ", ".join(f"{{{{{name}}}}}" for name in PLACEHOLDERS) + "."


class CannedReplyCreateInput(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    body = serializers.CharField(
        max_length=services.MAX_CANNED_REPLY_BODY, help_text=PLACEHOLDER_HELP
    )
    category_id = id_field(required=False, allow_null=True)
    shared = serializers.BooleanField(
        required=False,
        default=False,
        help_text="true: for the whole workspace (admins only); false: personal to the caller.",
    )


class CannedReplyUpdateInput(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False)
    body = serializers.CharField(
        max_length=services.MAX_CANNED_REPLY_BODY, required=False, help_text=PLACEHOLDER_HELP
    )
    category_id = id_field(required=False, allow_null=True)
    shared = serializers.BooleanField(
        required=False, help_text="Making a reply shared or personal takes an admin."
    )


class CannedReplyListQuery(serializers.Serializer):
    q = _search_field("Search in titles and bodies.")
    category = id_field(required=False, help_text="A category id.")
    scope = serializers.ChoiceField(
        choices=["all", "shared", "personal"],
        required=False,
        default="all",
        help_text="Shared replies, the caller's personal ones, or both.",
    )


class CannedReplyRenderInput(serializers.Serializer):
    ticket = id_field(help_text="The ticket's number.")


class RenderedReplyOutput(serializers.Serializer):
    body = serializers.CharField(help_text="Plain text, placeholders filled.")
    unknown_placeholders = serializers.ListField(
        child=serializers.CharField(),
        help_text="Template-like text that is not a known placeholder, left as written.",
    )


# --- Views ---------------------------------------------------------------------------------

ADMIN_WRITES = {
    "create": (IsAdminRole,),
    "partial_update": (IsAdminRole,),
    "destroy": (IsAdminRole,),
}


class CategoryViewSet(PeopleViewSet):
    model = Category
    output_serializer_class = CategoryOutput
    input_serializers = {"create": CategoryCreateInput, "partial_update": CategoryUpdateInput}
    output_serializers = {"destroy": NO_CONTENT}
    query_serializers = {"list": CategoryListQuery}
    action_permission_classes = ADMIN_WRITES
    cursor_ordering = ("name", "id")

    def get_workspace_queryset(self, workspace: Workspace) -> QuerySet[Category]:
        return category_list(workspace=workspace, q=self.query.get("q", ""))

    @extend_schema(summary="List categories", description="By name; search with `q`.")
    def list(self, request: Request) -> Response:
        return self.paginated(self.get_queryset())

    @extend_schema(
        summary="Create a category (admins)",
        description="A name another category has, in any case, is a 409 `duplicate`.",
    )
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        category = services.category_create(workspace=self.workspace, actor=self.agent, **data)
        return self.output(category, status=status.HTTP_201_CREATED)

    @extend_schema(summary="A category")
    def retrieve(self, request: Request, pk: str) -> Response:
        return self.output(self.get_object())

    @extend_schema(summary="Change a category (admins)")
    def partial_update(self, request: Request, pk: str) -> Response:
        category = self.get_object()
        data = self.validated_input(partial=True)
        services.category_update(
            workspace=self.workspace, actor=self.agent, category=category, **data
        )
        return self.output(category)

    @extend_schema(
        summary="Delete a category (admins)",
        description="Its tickets lose it (with a history row each); its canned replies stay, "
        "uncategorised.",
        responses={204: None},
    )
    def destroy(self, request: Request, pk: str) -> Response:
        services.category_delete(
            workspace=self.workspace, actor=self.agent, category=self.get_object()
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class TagViewSet(PeopleViewSet):
    model = Tag
    output_serializer_class = TagOutput
    input_serializers = {"create": TagCreateInput, "partial_update": TagUpdateInput}
    output_serializers = {"destroy": NO_CONTENT}
    query_serializers = {"list": TagListQuery}
    action_permission_classes = ADMIN_WRITES
    cursor_ordering = ("name", "id")

    def get_workspace_queryset(self, workspace: Workspace) -> QuerySet[Tag]:
        return tag_list(workspace=workspace, q=self.query.get("q", ""))

    @extend_schema(summary="List tags", description="By name; search with `q`.")
    def list(self, request: Request) -> Response:
        return self.paginated(self.get_queryset())

    @extend_schema(
        summary="Create a tag (admins)",
        description="A name another tag has, in any case, is a 409 `duplicate`. (Agents also "
        "create tags by putting new names on tickets.)",
    )
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        tag = services.tag_create(workspace=self.workspace, actor=self.agent, **data)
        return self.output(tag, status=status.HTTP_201_CREATED)

    @extend_schema(summary="A tag")
    def retrieve(self, request: Request, pk: str) -> Response:
        return self.output(self.get_object())

    @extend_schema(
        summary="Rename or recolour a tag (admins)",
        description="A rename applies to every ticket wearing the tag.",
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        tag = self.get_object()
        data = self.validated_input(partial=True)
        services.tag_update(workspace=self.workspace, actor=self.agent, tag=tag, **data)
        return self.output(tag)

    @extend_schema(
        summary="Delete a tag (admins)",
        description="It comes off every ticket (with a history row each).",
        responses={204: None},
    )
    def destroy(self, request: Request, pk: str) -> Response:
        services.tag_delete(workspace=self.workspace, actor=self.agent, tag=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class CannedReplyViewSet(PeopleViewSet):
    model = CannedReply
    output_serializer_class = CannedReplyOutput
    input_serializers = {
        "create": CannedReplyCreateInput,
        "partial_update": CannedReplyUpdateInput,
        "render": CannedReplyRenderInput,
    }
    output_serializers = {"destroy": NO_CONTENT, "render": RenderedReplyOutput}
    query_serializers = {"list": CannedReplyListQuery}
    # Whether a write needs an admin depends on the reply (shared or personal): the
    # services decide, with the same 403 codes the permission classes use.
    # A light agent may render (to write an internal note from a canned reply).
    light_agent_actions = frozenset({"render"})
    cursor_ordering = ("title", "id")

    def get_workspace_queryset(self, workspace: Workspace) -> QuerySet[CannedReply]:
        category = None
        if "category" in self.query:
            category = reference_in_workspace(
                Category, workspace, self.query["category"], field="category"
            )
        return canned_replies_for(
            agent=self.agent,
            q=self.query.get("q", ""),
            category=category,
            scope=self.query.get("scope", "all"),
        )

    def _category(self, data: dict[str, Any]) -> dict[str, Any]:
        if "category_id" not in data:
            return {}
        category_id = data.pop("category_id")
        if category_id is None:
            return {"category": None}
        return {
            "category": reference_in_workspace(
                Category, self.workspace, category_id, field="category_id"
            )
        }

    @extend_schema(
        summary="List canned replies",
        description="The shared ones and the caller's personal ones, by title.",
    )
    def list(self, request: Request) -> Response:
        return self.paginated(self.get_queryset())

    @extend_schema(
        summary="Create a canned reply",
        description="Shared (`shared: true`, admins only) or personal to the caller (any "
        "agent but a light one).",
    )
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        category = self._category(data)
        canned = services.canned_reply_create(
            workspace=self.workspace, actor=self.agent, **category, **data
        )
        return self.output(canned, status=status.HTTP_201_CREATED)

    @extend_schema(summary="A canned reply")
    def retrieve(self, request: Request, pk: str) -> Response:
        return self.output(self.get_object())

    @extend_schema(
        summary="Change a canned reply",
        description="A shared reply takes an admin; a personal one only its owner can see "
        "or change.",
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        canned = self.get_object()
        data = self.validated_input(partial=True)
        category = self._category(data)
        services.canned_reply_update(
            workspace=self.workspace, actor=self.agent, canned_reply=canned, **category, **data
        )
        return self.output(canned)

    @extend_schema(
        summary="Delete a canned reply",
        description="A shared reply takes an admin; a personal one its owner.",
        responses={204: None},
    )
    def destroy(self, request: Request, pk: str) -> Response:
        services.canned_reply_delete(
            workspace=self.workspace, actor=self.agent, canned_reply=self.get_object()
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Render a canned reply for a ticket",
        description=(
            "Fills the placeholders for a reply by the caller on the ticket with this number "
            f"and counts the use. {PLACEHOLDER_HELP} Anything else that looks like a "
            "template (`{{ 7*7 }}`, `{% if %}`, unknown names) is left as written and listed "
            "in `unknown_placeholders`. An unknown ticket number is a 400 "
            "`invalid_reference` on `ticket`."
        ),
        responses={200: RenderedReplyOutput},
        examples=[
            OpenApiExample(
                "Rendered",
                value={"body": "Hi Carol, about #42: ...", "unknown_placeholders": []},
                response_only=True,
            )
        ],
    )
    @action(detail=True, methods=["post"])
    def render(self, request: Request, pk: str) -> Response:
        canned = self.get_object()
        data = self.validated_input()
        ticket = (
            Ticket.objects.for_workspace(self.workspace)
            .filter(number=data["ticket"], deleted_at__isnull=True)
            .select_related("customer", "workspace")
            .first()
        )
        if ticket is None:
            raise InvalidInput(
                "Unknown ticket in this workspace.", code="invalid_reference", field="ticket"
            )
        rendered = services.canned_reply_render(
            workspace=self.workspace, actor=self.agent, canned_reply=canned, ticket=ticket
        )
        return self.output(
            {"body": rendered.body, "unknown_placeholders": rendered.unknown_placeholders}
        )
