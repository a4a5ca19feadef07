"""OpenAPI 3 for ``/v1`` (drf-spectacular), documented once for every endpoint.

``EnqueAutoSchema`` is REST_FRAMEWORK's DEFAULT_SCHEMA_CLASS. Without per-view decorators
it documents:

- the request body from the view's input serializer and the success response from its output
  serializer (201 for ``create``, 204 when there is no output serializer, lists paginated);
- the query parameters of the view's ``query_serializer_class``;
- the error responses 400, 401, 403, 404, 409, 413, 429 (and 415 for bodies), each the
  ``ErrorEnvelope`` component (enque.api.errors);
- the headers every answer carries (``X-Request-ID``, ``X-RateLimit-*``), ``Retry-After`` on
  429, and the ``Idempotency-Key`` request header on POST.

``@extend_schema`` on a view still overrides any of it (a 202, a description, examples).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from enque.api import idempotency

ERROR_ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every 4xx and 5xx answer of the API.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "request_id"],
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Stable, snake_case: branch on this.",
                    "example": "invalid",
                },
                "message": {
                    "type": "string",
                    "description": "For people; may change.",
                    "example": "Invalid input.",
                },
                "fields": {
                    "type": "object",
                    "description": "Validation errors only: messages per offending input "
                    "(dotted paths for nested input).",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    "example": {"email": ["Enter a valid email address."]},
                },
                "request_id": {
                    "type": "string",
                    "description": "The response's X-Request-ID: quote it when reporting.",
                    "example": "4bf92f3577b34da6a3ce929d0e0e4736",
                },
            },
        }
    },
}

ERROR_RESPONSES = {
    "400": "Invalid input (code `invalid`, with `fields`), or a request a rule refuses.",
    "401": "No token, an invalid or expired one, or a membership no longer active.",
    "403": "The caller's role does not allow this "
    "(`admin_required`, `owner_required`, `light_agent`).",
    "404": "Not found, or another workspace's: the two answers are the same.",
    "409": "Conflicts with the current state (e.g. `idempotency_key_reused`).",
    "413": "The request body is too large.",
    "429": "Rate limited (`throttled`): retry after `Retry-After` seconds.",
}
BODY_ERROR_RESPONSES = {"415": "The request body is not JSON (`unsupported_media_type`)."}

RESPONSE_HEADERS = [
    OpenApiParameter(
        "X-Request-ID",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=True,
        description="The request's id: the client's X-Request-ID when well-formed, else new.",
    ),
    OpenApiParameter(
        "X-RateLimit-Limit",
        OpenApiTypes.INT,
        OpenApiParameter.HEADER,
        response=True,
        description="Requests allowed in the current window of the tightest limit.",
    ),
    OpenApiParameter(
        "X-RateLimit-Remaining",
        OpenApiTypes.INT,
        OpenApiParameter.HEADER,
        response=True,
        description="Requests left in that window.",
    ),
    OpenApiParameter(
        "X-RateLimit-Reset",
        OpenApiTypes.INT,
        OpenApiParameter.HEADER,
        response=True,
        description="When that window ends (Unix time, seconds).",
    ),
    OpenApiParameter(
        "Retry-After",
        OpenApiTypes.INT,
        OpenApiParameter.HEADER,
        response=[429],
        description="Seconds to wait before retrying.",
    ),
]

REQUEST_ID_PARAMETER = OpenApiParameter(
    "X-Request-ID",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    pattern=r"^[A-Za-z0-9._:-]{8,128}$",
    description="Optional: your id for this request, echoed back and written to our logs.",
)
IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    idempotency.HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    pattern=r"^[\x21-\x7e]{1,255}$",
    description="Optional: retrying with the same key (within 24 hours) returns the first "
    "response and creates nothing new; the same key with another request is a 409.",
)


class AgentJWTScheme(SimpleJWTScheme):
    """Document enque.api.authentication's JWT as the bearer scheme it is."""

    target_class = "enque.api.authentication.AgentJWTAuthentication"
    name = "jwtAuth"


def _view_hook(view: Any, name: str) -> Any:
    hook = getattr(view, name, None)
    return hook if callable(hook) else None


class EnqueAutoSchema(AutoSchema):
    def get_request_serializer(self) -> Any:
        hook = _view_hook(self.view, "get_input_serializer_class")
        return hook() if hook is not None else super().get_request_serializer()

    def get_response_serializers(self) -> Any:
        hook = _view_hook(self.view, "get_output_serializer_class")
        if hook is None:
            return super().get_response_serializers()
        serializer_class = hook()
        if serializer_class is None:
            return {"204": None}
        return serializer_class

    def get_override_parameters(self) -> list[Any]:
        parameters: list[Any] = [*super().get_override_parameters(), *RESPONSE_HEADERS]
        parameters.append(REQUEST_ID_PARAMETER)
        if self.method == "POST" and getattr(self.view, "idempotent", False):
            parameters.append(IDEMPOTENCY_KEY_PARAMETER)
        hook = _view_hook(self.view, "get_query_serializer_class")
        query_serializer_class = hook() if hook is not None else None
        if query_serializer_class is not None:
            parameters.append(query_serializer_class)
        return parameters

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        envelope = ResolvedComponent(
            name="ErrorEnvelope",
            type=ResolvedComponent.SCHEMA,
            object="ErrorEnvelope",
            schema=ERROR_ENVELOPE_SCHEMA,
        )
        self.registry.register_on_missing(envelope)
        errors = dict(ERROR_RESPONSES)
        if self.method in ("POST", "PUT", "PATCH"):
            errors.update(BODY_ERROR_RESPONSES)
        for code, description in sorted(errors.items()):
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(envelope.ref, description=description),
                    code,
                    direction=direction,
                )
        return responses
