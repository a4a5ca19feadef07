"""The one error envelope of ``/v1``, and everything that renders it.

Every 4xx and 5xx answer of the API has this shape::

    {"error": {"code": "snake_case", "message": "For people.",
               "fields": {"email": ["Enter a valid email address."]},   # validation only
               "request_id": "4bf92f3577b34da6a3ce929d0e0e4736"}}

``code`` is stable (clients branch on it), ``message`` is for people, ``fields`` names the
offending input (dotted paths for nested input, e.g. ``customer.email``) and ``request_id``
matches the response's ``X-Request-ID`` and our log lines.

``exception_handler`` (REST_FRAMEWORK["EXCEPTION_HANDLER"]) renders domain errors
(``enque.errors.EnqueError``), DRF's exceptions and Django's ``Http404`` /
``PermissionDenied``. Anything else is a bug: it is logged with its traceback and answered
500 in the envelope, never folded into a 400. ``handler404`` / ``handler500`` (and 400/403)
in ``enque/urls.py`` do the same for ``/v1`` requests that never reach a view; other paths
keep Django's HTML pages.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from enque.api.middleware import current_request_id
from enque.api.throttling import count_unrouted_request
from enque.errors import EnqueError

logger = logging.getLogger("enque.api")

API_PREFIX = "/v1/"

# Messages for the errors whose DRF/Django text would say more than a client needs to
# know (a model name in "No Workspace matches the given query", say).
NOT_FOUND_MESSAGE = "Not found."
SERVER_ERROR_MESSAGE = "Internal server error."
TOO_LARGE_MESSAGE = "The request body is too large."


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = TOO_LARGE_MESSAGE
    default_code = "request_too_large"


def error_body(
    *,
    code: str,
    message: str,
    fields: Mapping[str, list[str]] | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = dict(fields)
    error["request_id"] = request_id or current_request_id()
    return {"error": error}


def is_api_request(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX) or request.path_info == API_PREFIX[:-1]


# --- DRF -------------------------------------------------------------------------------


def exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response:
    request = context.get("request")
    headers: dict[str, str] = {}

    if isinstance(exc, EnqueError):
        status_code, code, message = exc.status_code, exc.code, exc.message
        # A domain error names at most one field; some carry several messages for it
        # (the password validators' reasons).
        messages = list(getattr(exc, "field_messages", None) or [exc.message])
        fields = {exc.field: messages} if exc.field else None
    elif isinstance(exc, Http404):
        status_code, code, message, fields = 404, "not_found", NOT_FOUND_MESSAGE, None
    elif isinstance(exc, DjangoPermissionDenied):
        status_code, code, fields = 403, "permission_denied", None
        message = str(exc) or str(exceptions.PermissionDenied.default_detail)
    elif isinstance(exc, RequestDataTooBig):
        status_code, code, message, fields = 413, "request_too_large", TOO_LARGE_MESSAGE, None
    elif isinstance(exc, exceptions.ValidationError):
        status_code, code = exc.status_code, "invalid"
        fields = flatten_validation_errors(exc.detail)
        message = _validation_message(fields)
    elif isinstance(exc, exceptions.APIException):
        status_code, fields = exc.status_code, None
        code, message = _code_and_message(exc)
        if isinstance(exc, exceptions.NotFound):
            message = NOT_FOUND_MESSAGE
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(max(1, math.ceil(exc.wait)))
    else:
        return _unexpected(exc, request)

    set_rollback()
    return Response(
        error_body(code=code, message=message, fields=fields), status=status_code, headers=headers
    )


def _code_and_message(exc: exceptions.APIException) -> tuple[str, str]:
    detail: Any = exc.detail
    # simplejwt's errors carry {"detail": ..., "code": ..., "messages": [...]}.
    if isinstance(detail, dict):
        explicit_code = detail.get("code")
        detail = detail.get("detail", exc.default_detail)
        if explicit_code:
            return str(explicit_code), str(detail)
    elif isinstance(detail, list):
        detail = detail[0] if detail else exc.default_detail
    code = getattr(detail, "code", None) or exc.default_code
    return str(code), str(detail)


def _unexpected(exc: Exception, request: Any) -> Response:
    """A bug: log it with its traceback and answer 500 in the envelope."""
    django_request = getattr(request, "_request", request)
    logger.error(
        "Unhandled %s in %s %s",
        type(exc).__name__,
        getattr(django_request, "method", "-"),
        getattr(django_request, "path", "-"),
        exc_info=exc,
    )
    # What Django does for an uncaught exception, so error reporters hooked there still see it.
    signals.got_request_exception.send(sender=None, request=django_request)
    set_rollback()
    message = SERVER_ERROR_MESSAGE
    if settings.DEBUG:
        message = f"{SERVER_ERROR_MESSAGE} {type(exc).__name__}: {exc}"
    return Response(
        error_body(code="server_error", message=message),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def flatten_validation_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as ``{"field.sub.0.name": ["message", ...]}``."""
    fields: dict[str, list[str]] = {}
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for field, messages in flatten_validation_errors(value, name).items():
                fields.setdefault(field, []).extend(messages)
    elif isinstance(detail, list | tuple):
        if all(not isinstance(item, Mapping | list | tuple) for item in detail):
            if detail:
                fields[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            # A list of nested objects: errors keyed by index ({} for items that passed).
            for index, item in enumerate(detail):
                name = f"{prefix}.{index}" if prefix else str(index)
                for field, messages in flatten_validation_errors(item, name).items():
                    fields.setdefault(field, []).extend(messages)
    else:
        fields[prefix or "non_field_errors"] = [str(detail)]
    return fields


def _validation_message(fields: Mapping[str, list[str]]) -> str:
    if list(fields) == ["non_field_errors"]:
        return fields["non_field_errors"][0]
    return "Invalid input."


# --- Django handlers for /v1 requests that never reach a view ---------------------------


def json_error(request: HttpRequest, status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(
        error_body(code=code, message=message, request_id=getattr(request, "request_id", None)),
        status=status_code,
    )


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not is_api_request(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return json_error(request, 413, "request_too_large", TOO_LARGE_MESSAGE)
    return json_error(request, 400, "bad_request", "Bad request.")


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not is_api_request(request):
        return defaults.permission_denied(request, exception)
    return json_error(
        request, 403, "permission_denied", str(exceptions.PermissionDenied.default_detail)
    )


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not is_api_request(request):
        return defaults.page_not_found(request, exception)
    return api_not_found(request)


# Exempt like every DRF view: the API authenticates with tokens, not cookies, and this view
# changes nothing; otherwise a POST to an unknown /v1 path is CSRF's HTML 403, not a 404.
@csrf_exempt
def api_not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """The last route under /v1/ (enque/api/urls.py), so an unknown API path is a JSON 404
    for every method, even with DEBUG on, when Django would render its technical 404 page."""
    # Unknown /v1 paths count against the caller's address like any API request, so a
    # scan of guessed URLs runs into the same limit (and the answer carries its headers).
    throttled = count_unrouted_request(request)
    if throttled is not None:
        response = json_error(request, 429, "throttled", "Request was throttled.")
        response["Retry-After"] = str(throttled)
        return response
    return json_error(request, 404, "not_found", NOT_FOUND_MESSAGE)


def handler500(request: HttpRequest) -> HttpResponse:
    if not is_api_request(request):
        return defaults.server_error(request)
    # Django has logged the exception (django.request) before calling this.
    return json_error(request, 500, "server_error", SERVER_ERROR_MESSAGE)
