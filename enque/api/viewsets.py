"""The bases every ``/v1`` view is built on.

``WorkspaceScopedViewSet`` is the one guarded base for everything inside a workspace
(tickets, customers, teams, agents...). A view written on it is three steps — checked
fetch, service, output serializer::

    class TeamViewSet(WorkspaceScopedViewSet):
        model = Team
        input_serializer_class = TeamInput
        output_serializer_class = TeamOutput
        action_permission_classes = {"create": (IsAdminRole,)}

        def get_workspace_queryset(self, workspace):
            return team_list(workspace=workspace)          # a selector

        def list(self, request):
            return self.paginated(self.get_queryset())

        def create(self, request):
            data = self.validated_input()
            team = team_create(workspace=self.workspace, **data)
            return self.output(team, status=201)

        def retrieve(self, request, pk):
            return self.output(self.get_object())           # 404 outside the workspace

What the base does so that no view can forget it:

- the workspace is ``request.workspace``, set by the token's authentication, never a URL or
  body parameter;
- the queryset comes from the required ``get_workspace_queryset(workspace)``, and the base
  filters it by the workspace once more for tenant models, so ``get_object`` answers 404 for
  another workspace's object exactly as for a missing one. A view that must reach across
  workspaces (the caller's own list of workspaces) overrides
  ``dangerously_get_unscoped_queryset`` instead, a name reviewers look for;
- permissions are ``IsWorkspaceMember`` and ``LightAgentReadOnly`` first, then the view's
  ``permission_classes``, then ``action_permission_classes[action]``;
- input and output serializers are separate (``input_serializer_class`` /
  ``output_serializer_class``, per action through ``@action(input_serializer_class=...)``
  or the ``get_*_serializer_class`` methods), and the OpenAPI schema reads them;
- query parameters are validated by ``query_serializer_class``: an unknown parameter or a
  bad value is a 400 naming it; the valid values are ``self.query``.

``EnqueAPIView`` is the base for the few endpoints outside a workspace (auth). Both share
``EnqueViewMixin``: idempotent POSTs, rate-limit accounting on early errors, and the
serializer helpers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import models
from rest_framework import exceptions, status
from rest_framework.metadata import SimpleMetadata
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView
from rest_framework.viewsets import GenericViewSet

from enque.api import idempotency, throttling
from enque.api.pagination import CursorPagination
from enque.api.permissions import IsWorkspaceMember, LightAgentReadOnly
from workspaces.models import Agent, TenantModel, Workspace

# Query parameters any view accepts: DRF's format override.
ALWAYS_ALLOWED_QUERY_PARAMS = frozenset({"format"})


class EnqueMetadata(SimpleMetadata):
    """What ``OPTIONS`` answers: the view's name and description and the media types it
    renders and parses. DRF's default would also describe each write's fields from
    ``get_serializer()``, which our split input/output serializers (and actions without a
    body, or without a ``pk``) do not fit; the OpenAPI schema (/v1/schema) documents them."""

    def determine_metadata(self, request: Request, view: APIView) -> dict[str, Any]:
        return {
            "name": view.get_view_name(),
            "description": view.get_view_description(),
            "renders": [renderer.media_type for renderer in view.renderer_classes],
            "parses": [parser.media_type for parser in view.parser_classes],
        }


@functools.cache
def query_parameter_names(query_serializer_class: type[BaseSerializer]) -> frozenset[str]:
    """The parameters a query serializer reads. Cached per class: building ``fields``
    deep-copies every declared field, on every request otherwise; the names are fixed by
    the class (the serializer is built without context for this)."""
    return frozenset(query_serializer_class().fields)


class EnqueViewMixin:
    """Shared by every /v1 view (DRF ``APIView`` subclasses)."""

    metadata_class = EnqueMetadata

    input_serializer_class: type[BaseSerializer] | None = None
    output_serializer_class: type[BaseSerializer] | None = None
    query_serializer_class: type[BaseSerializer] | None = None
    # Throttles added to the defaults (api, read, write), e.g. (AuthRateThrottle,).
    extra_throttle_classes: tuple[type, ...] = ()
    # POSTs honour Idempotency-Key. Off only where a response holds credentials.
    idempotent = True

    _idempotency_claim: idempotency.Claim | None = None
    _query: dict[str, Any] | None = None

    # --- policy --------------------------------------------------------------------------

    def get_throttles(self) -> list[Any]:
        return [*super().get_throttles(), *(cls() for cls in self.extra_throttle_classes)]  # type: ignore[misc]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self._idempotency_claim = None
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        self._query = self.validate_query_params(request)
        self._idempotency_claim = idempotency.begin(request, self)  # type: ignore[arg-type]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, idempotency.Replay):
            return exc.response
        exc = throttling.check_before_error(self, exc)  # type: ignore[arg-type]
        return super().handle_exception(exc)  # type: ignore[misc]

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        claim, self._idempotency_claim = self._idempotency_claim, None
        idempotency.finish(claim, response)
        return response

    # --- query parameters ----------------------------------------------------------------

    def get_query_serializer_class(self) -> type[BaseSerializer] | None:
        return self.query_serializer_class

    def allowed_query_params(self) -> set[str]:
        allowed = set(ALWAYS_ALLOWED_QUERY_PARAMS)
        query_serializer_class = self.get_query_serializer_class()
        if query_serializer_class is not None:
            allowed.update(query_parameter_names(query_serializer_class))
        paginator = getattr(self, "paginator", None)
        if paginator is not None and getattr(self, "action", None) == "list":
            allowed.update(getattr(paginator, "query_params", ()))
        return allowed

    def validate_query_params(self, request: Request) -> dict[str, Any]:
        unknown = sorted(set(request.query_params) - self.allowed_query_params())
        if unknown:
            raise exceptions.ValidationError(
                {name: ["Unknown query parameter."] for name in unknown}
            )
        query_serializer_class = self.get_query_serializer_class()
        if query_serializer_class is None:
            return {}
        serializer = query_serializer_class(
            data=request.query_params, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    @property
    def query(self) -> dict[str, Any]:
        """The validated query parameters of this request."""
        return self._query or {}

    # --- serializers ---------------------------------------------------------------------

    def get_serializer_context(self) -> dict[str, Any]:
        return {
            "request": self.request,  # type: ignore[attr-defined]
            "view": self,
            "format": getattr(self, "format_kwarg", None),
        }

    def get_input_serializer_class(self) -> type[BaseSerializer] | None:
        return self.input_serializer_class

    def get_output_serializer_class(self) -> type[BaseSerializer] | None:
        return self.output_serializer_class

    def get_input_serializer(self, *args: Any, **kwargs: Any) -> BaseSerializer:
        serializer_class = self.get_input_serializer_class()
        if serializer_class is None:
            raise ImproperlyConfigured(f"{type(self).__name__} has no input serializer.")
        kwargs.setdefault("context", self.get_serializer_context())
        return serializer_class(*args, **kwargs)

    def get_output_serializer(self, *args: Any, **kwargs: Any) -> BaseSerializer:
        serializer_class = self.get_output_serializer_class()
        if serializer_class is None:
            raise ImproperlyConfigured(f"{type(self).__name__} has no output serializer.")
        kwargs.setdefault("context", self.get_serializer_context())
        return serializer_class(*args, **kwargs)

    def validated_input(self, data: Any = None, **kwargs: Any) -> dict[str, Any]:
        """The request body validated by the input serializer (400 with field errors)."""
        request = self.request  # type: ignore[attr-defined]
        serializer = self.get_input_serializer(
            data=request.data if data is None else data, **kwargs
        )
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def output(self, instance: Any, *, status: int = status.HTTP_200_OK, **kwargs: Any) -> Response:
        return Response(self.get_output_serializer(instance, **kwargs).data, status=status)


class EnqueAPIView(EnqueViewMixin, APIView):
    """A /v1 endpoint outside any workspace's objects (register, login, password reset).
    Declare ``permission_classes`` explicitly: ``AllowAny`` or ``IsAuthenticated``."""

    def get_serializer_class(self) -> type[BaseSerializer] | None:
        # For the browsable API and schema tools that look for this name.
        return self.get_input_serializer_class() or self.get_output_serializer_class()


class WorkspaceScopedViewSet(EnqueViewMixin, GenericViewSet):
    # The model the queryset holds: lets the OpenAPI generator type path parameters
    # without a request (and so without a workspace).
    model: type[models.Model] | None = None
    pagination_class = CursorPagination
    lookup_value_regex = "[0-9]+"
    # Extra permission classes, after the member and light-agent rules.
    permission_classes: tuple[type[BasePermission], ...] = ()
    action_permission_classes: dict[str, tuple[type[BasePermission], ...]] = {}
    # Write actions a light agent may call (see permissions.LightAgentReadOnly).
    light_agent_actions: frozenset[str] = frozenset()

    # --- the tenant ----------------------------------------------------------------------

    @property
    def workspace(self) -> Workspace:
        return self.request.workspace

    @property
    def agent(self) -> Agent:
        return self.request.agent

    def get_workspace_queryset(self, workspace: Workspace) -> models.QuerySet:
        raise NotImplementedError(
            f"{type(self).__name__} must define get_workspace_queryset(workspace)."
        )

    def get_queryset(self) -> models.QuerySet:
        if getattr(self, "swagger_fake_view", False):
            # drf-spectacular introspects views without a request or a workspace.
            if self.model is None:
                raise ImproperlyConfigured(f"{type(self).__name__} must declare `model`.")
            return self.model._default_manager.none()
        unscoped = getattr(self, "dangerously_get_unscoped_queryset", None)
        if unscoped is not None:
            return unscoped()
        workspace = self.workspace
        queryset = self.get_workspace_queryset(workspace)
        # Belt and braces: whatever the selector did, only this workspace's rows.
        if issubclass(queryset.model, TenantModel):
            return queryset.filter(workspace_id=workspace.pk)
        if queryset.model is Workspace:
            return queryset.filter(pk=workspace.pk)
        raise ImproperlyConfigured(
            f"{queryset.model.__name__} is not tenant-owned; scope it yourself in "
            f"dangerously_get_unscoped_queryset() on {type(self).__name__}."
        )

    # --- permissions ---------------------------------------------------------------------

    def get_permissions(self) -> list[BasePermission]:
        classes = [
            IsWorkspaceMember,
            LightAgentReadOnly,
            *self.permission_classes,
            *self.action_permission_classes.get(self.action, ()),
        ]
        return [permission() for permission in classes]

    # --- serializers ---------------------------------------------------------------------

    def get_serializer_class(self) -> type[BaseSerializer]:
        # GenericAPIView's hook (browsable API, schema tools): input for writes.
        if self.request is not None and self.request.method in ("POST", "PUT", "PATCH"):
            serializer_class = self.get_input_serializer_class()
        else:
            serializer_class = self.get_output_serializer_class()
        if serializer_class is None:
            raise ImproperlyConfigured(f"{type(self).__name__} has no serializer for this action.")
        return serializer_class

    def paginated(
        self,
        queryset: models.QuerySet,
        *,
        embed: Callable[[list[Any]], list[Any]] | None = None,
    ) -> Response:
        """A page of ``queryset`` through the output serializer, in the list envelope;
        ``embed`` first loads onto the page's objects what the serializer reads of other
        tables (a fixed number of queries, whatever the page size)."""
        page = self.paginate_queryset(queryset)
        if embed is not None and page is not None:
            page = embed(page)
        data = self.get_output_serializer(page, many=True).data
        return self.get_paginated_response(data)
