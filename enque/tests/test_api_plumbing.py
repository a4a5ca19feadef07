"""The /v1 plumbing: error envelope, request ids and logs, rate limits, idempotency,
pagination, query validation, the scoped base view and the OpenAPI schema.

A probe viewset (below, routed under /v1/probe by this module's URLconf) exercises the
base classes the way the ticket and people endpoints will.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import RequestFactory
from django.urls import include, path
from drf_spectacular.validation import validate_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.test import APIClient

from enque import config
from enque.api import errors
from enque.api.middleware import RequestContextLogFilter
from enque.api.permissions import require_full_agent
from enque.api.viewsets import WorkspaceScopedViewSet
from enque.tests.factories import AgentFactory, TeamFactory
from enque.urls import handler400, handler403, handler404, handler500  # noqa: F401
from workspaces.models import Agent, AgentRole, IdempotencyKey, Team, Workspace

# --- A probe of the base classes -------------------------------------------------------


class TeamOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class TeamQuery(serializers.Serializer):
    name = serializers.CharField(required=False)
    min_id = serializers.IntegerField(required=False, min_value=1)


class NoteInput(serializers.Serializer):
    internal = serializers.BooleanField(default=False)


class ProbeViewSet(WorkspaceScopedViewSet):
    model = Team
    output_serializer_class = TeamOutput
    query_serializer_class = TeamQuery
    cursor_ordering = ("-id",)
    light_agent_actions = frozenset({"note"})

    def get_workspace_queryset(self, workspace: Workspace) -> Any:
        return Team.objects.all()  # a careless selector: the base still scopes it

    def list(self, request: Any) -> Response:
        teams = self.get_queryset()
        if "min_id" in self.query:
            teams = teams.filter(pk__gte=self.query["min_id"])
        return self.paginated(teams)

    def retrieve(self, request: Any, pk: str) -> Response:
        return self.output(self.get_object())

    def create(self, request: Any) -> Response:
        team = Team.objects.create(workspace=self.workspace, name=request.data["name"])
        return self.output(team, status=status.HTTP_201_CREATED)

    @action(detail=False, methods=["post"], input_serializer_class=NoteInput)
    def note(self, request: Any) -> Response:
        if not self.validated_input()["internal"]:
            require_full_agent(request)
        return Response({"ok": True}, status=status.HTTP_201_CREATED)

    @action(detail=False, methods=["get"])
    def boom(self, request: Any) -> Response:
        raise RuntimeError("kaboom")


router = SimpleRouter(trailing_slash=False)
router.register("probe", ProbeViewSet, basename="probe")
urlpatterns = [path("v1/", include(router.urls)), path("", include("enque.urls"))]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def envelope(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert re.fullmatch(r"[a-z][a-z0-9_]*", error["code"])
    assert error["message"]
    assert error["request_id"] == response["X-Request-ID"]
    return error


# --- The envelope ------------------------------------------------------------------------


def test_400_names_each_invalid_field(api_client: APIClient) -> None:
    response = api_client.post("/v1/auth/login", {"email": "not-an-email"}, format="json")

    assert response.status_code == 400
    error = envelope(response)
    assert error["code"] == "invalid"
    assert error["fields"] == {
        "email": ["Enter a valid email address."],
        "password": ["This field is required."],
    }


def test_400_for_a_body_that_is_not_json(api_client: APIClient) -> None:
    response = api_client.post("/v1/auth/login", data="{not json", content_type="application/json")

    assert response.status_code == 400
    assert envelope(response)["code"] == "parse_error"


def test_401_without_a_token_challenges_for_one(api_client: APIClient) -> None:
    response = api_client.get("/v1/auth/me")

    assert response.status_code == 401
    assert envelope(response)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "fields" not in response.json()["error"]


def test_401_for_a_garbled_token(api_client: APIClient) -> None:
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not.a.token")

    response = api_client.get("/v1/auth/me")

    assert response.status_code == 401
    assert envelope(response)["code"] == "token_not_valid"


def test_403_names_the_rule(client_for: Any, bob: Agent) -> None:
    response = client_for(bob).post("/v1/agents/invite", {"email": "x@a.test"}, format="json")

    assert response.status_code == 403
    assert envelope(response)["code"] == "admin_required"


def test_404_for_a_missing_object_and_an_unknown_path(client_for: Any, alice: Agent) -> None:
    client = client_for(alice)

    missing = client.get("/v1/probe/999999")
    unknown = client.get("/v1/no-such-thing")

    assert missing.status_code == unknown.status_code == 404
    assert (envelope(missing)["code"], envelope(missing)["message"]) == ("not_found", "Not found.")
    assert envelope(unknown)["code"] == "not_found"
    assert unknown["Content-Type"] == "application/json"


def test_404_outside_v1_stays_djangos_html(client: Any) -> None:
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert response["X-Request-ID"]


def test_405_for_a_method_the_resource_lacks(client_for: Any, alice: Agent) -> None:
    response = client_for(alice).put(
        f"/v1/workspaces/{alice.workspace_id}", {"name": "x"}, format="json"
    )

    assert response.status_code == 405
    assert envelope(response)["code"] == "method_not_allowed"


def test_415_for_a_body_that_is_not_json(api_client: APIClient) -> None:
    response = api_client.post(
        "/v1/auth/login",
        "email=a%40b.test&password=x",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 415
    assert envelope(response)["code"] == "unsupported_media_type"


def test_413_for_a_json_body_over_the_cap(api_client: APIClient, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    body = json.dumps({"email": "a@b.test", "password": "x" * 200})

    response = api_client.post("/v1/auth/login", body, content_type="application/json")

    assert response.status_code == 413
    assert envelope(response)["code"] == "request_too_large"


def test_404_for_an_unknown_path_is_json_even_in_debug(
    api_client: APIClient, settings: Any
) -> None:
    settings.DEBUG = True

    response = api_client.get("/v1/tickets-that-do-not-exist/7")

    assert response.status_code == 404
    assert envelope(response)["code"] == "not_found"


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_404_for_an_unknown_path_whatever_the_method(method: str) -> None:
    # Found by the schemathesis run: the catch-all is a plain Django view, and CSRF (which
    # the test client skips unless told) answered writes with an HTML 403.
    client = APIClient(enforce_csrf_checks=True)

    response = getattr(client, method)("/v1/tickets/not-a-number", {}, format="json")

    assert response.status_code == 404
    assert envelope(response)["code"] == "not_found"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/probe",
        "/v1/probe/1",
        "/v1/probe/note",
        # Found by the schemathesis run: DRF's metadata asked these for a serializer (an
        # action without a body) or an object (a detail=False PUT) and answered 500.
        "/v1/tickets/1/restore",
        "/v1/teams/1/members",
        "/v1/signatures/me",
        "/v1/auth/login",
    ],
)
def test_options_describes_the_endpoint(client_for: Any, alice: Agent, path: str) -> None:
    response = client_for(alice).options(path)

    assert response.status_code == 200, response.content
    assert set(response.json()) == {"name", "description", "renders", "parses"}
    assert "application/json" in response.json()["renders"]
    assert "OPTIONS" in response["Allow"]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("post", "/v1/teams", {"name": "Big", "agent_ids": [2**64]}, "agent_ids.0"),
        ("post", "/v1/customers", {"email": "a@b.test", "company_id": 2**64}, "company_id"),
        (
            "post",
            "/v1/canned-replies",
            {"title": "T", "body": "B", "category_id": 2**64},
            "category_id",
        ),
        ("post", "/v1/agents/invite", {"email": "new@a.test", "team_ids": [2**64]}, "team_ids.0"),
        ("post", "/v1/auth/switch-workspace", {"workspace_id": 2**64}, "workspace_id"),
        ("get", "/v1/customers?company=18446744073709551616", None, "company"),
        ("get", "/v1/agents?team=18446744073709551616", None, "team"),
    ],
)
def test_an_id_too_large_for_any_column_is_a_400_naming_it(
    client_for: Any, alice: Agent, method: str, path: str, body: Any, field: str
) -> None:
    # Found by the schemathesis run: unbounded ids reached the database (OverflowError on
    # SQLite, a 500). Every id input is enque.api.fields.id_field, at most 2**53.
    response = getattr(client_for(alice), method)(path, body, format="json")

    assert response.status_code == 400, response.content
    assert set(envelope(response)["fields"]) == {field}


def test_500_is_logged_and_answered_in_the_envelope(
    client_for: Any, alice: Agent, caplog: pytest.LogCaptureFixture
) -> None:
    client = client_for(alice)
    client.raise_request_exception = False

    with caplog.at_level(logging.ERROR, logger="enque.api"):
        response = client.get("/v1/probe/boom", HTTP_X_REQUEST_ID="trace-500-abcdef")

    assert response.status_code == 500
    error = envelope(response)
    assert error["code"] == "server_error"
    assert error["request_id"] == "trace-500-abcdef"
    assert "kaboom" not in error["message"] or settings.DEBUG
    (record,) = [r for r in caplog.records if r.name == "enque.api"]
    assert record.exc_info[0] is RuntimeError


def test_django_handlers_answer_json_for_v1_only() -> None:
    factory = RequestFactory()
    api_request = factory.get("/v1/tickets")
    api_request.request_id = "handler-test-1234"
    page_request = factory.get("/tickets")

    api_500 = errors.handler500(api_request)
    api_403 = errors.handler403(api_request)
    api_400 = errors.handler400(api_request)
    page_500 = errors.handler500(page_request)

    assert (api_500.status_code, api_403.status_code, api_400.status_code) == (500, 403, 400)
    assert api_500["Content-Type"] == "application/json"
    assert json.loads(api_500.content)["error"] == {
        "code": "server_error",
        "message": "Internal server error.",
        "request_id": "handler-test-1234",
    }
    assert page_500["Content-Type"].startswith("text/html")


def test_domain_errors_keep_their_code_and_field(client_for: Any, alice: Agent) -> None:
    response = client_for(alice).post(
        "/v1/agents/invite", {"email": "new@a.test", "team_ids": [999999]}, format="json"
    )

    assert response.status_code == 400
    error = envelope(response)
    assert error["code"] == "invalid_reference"
    assert error["fields"] == {"team_ids": ["Unknown team in this workspace."]}


def test_nested_validation_errors_are_flattened_to_dotted_paths() -> None:
    detail = {"customer": {"email": ["Bad."]}, "tags": [{}, {"name": ["Too long."]}], "x": "y"}

    assert errors.flatten_validation_errors(detail) == {
        "customer.email": ["Bad."],
        "tags.1.name": ["Too long."],
        "x": ["y"],
    }


# --- Request ids and logs -------------------------------------------------------------------


def test_a_well_formed_client_request_id_is_kept(api_client: APIClient) -> None:
    response = api_client.get("/v1/auth/me", HTTP_X_REQUEST_ID="client-id:42.abc_DEF")

    assert response["X-Request-ID"] == "client-id:42.abc_DEF"


@pytest.mark.parametrize("sent", ["short", "has spaces in it", "x" * 129, "semi;colon-123"])
def test_a_malformed_request_id_is_replaced(api_client: APIClient, sent: str) -> None:
    response = api_client.get("/healthz", HTTP_X_REQUEST_ID=sent)

    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_every_response_gets_a_request_id(api_client: APIClient) -> None:
    first = api_client.get("/healthz")["X-Request-ID"]
    second = api_client.get("/healthz")["X-Request-ID"]

    assert first != second


def test_every_log_line_of_a_request_carries_its_id_workspace_and_agent(
    client_for: Any, alice: Agent
) -> None:
    console = settings.LOGGING["handlers"]["console"]
    assert "request_context" in console["filters"]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestContextLogFilter())
    handler.setFormatter(logging.Formatter(settings.LOGGING["formatters"]["plain"]["format"]))
    root = logging.getLogger()
    root.addHandler(handler)
    client = client_for(alice)
    client.raise_request_exception = False
    try:
        client.get("/v1/probe/boom", HTTP_X_REQUEST_ID="trace-logs-123456")
    finally:
        root.removeHandler(handler)

    lines = stream.getvalue().strip().splitlines()
    headlines = [line for line in lines if re.match(r"\d{4}-\d\d-\d\d ", line)]
    assert {line.split()[3] for line in headlines} >= {"enque.api", "enque.access"}
    for line in headlines:
        assert "request_id=trace-logs-123456" in line
        assert f"workspace={alice.workspace_id} agent={alice.pk}" in line


def test_one_access_line_per_request(
    client_for: Any, alice: Agent, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="enque.access"):
        response = client_for(alice).get("/v1/auth/me?x=secret-in-query")

    (record,) = [r for r in caplog.records if r.name == "enque.access"]
    assert record.levelno == logging.INFO
    assert (record.method, record.path, record.status) == ("GET", "/v1/auth/me", 400)
    assert record.workspace_id == alice.workspace_id
    assert record.agent_id == alice.pk
    assert record.request_id == response["X-Request-ID"]
    assert record.duration_ms >= 0
    assert "secret-in-query" not in record.getMessage()


def test_the_middleware_works_under_asgi(alice: Agent) -> None:
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    from enque.api.authentication import issue_tokens

    headers = {
        "Authorization": f"Bearer {issue_tokens(alice)['access']}",
        "X-Request-ID": "asgi-req-0001",
    }

    response = async_to_sync(AsyncClient().get)("/v1/auth/me", headers=headers)

    assert response.status_code == 200
    assert response["X-Request-ID"] == "asgi-req-0001"
    assert response["X-RateLimit-Limit"] == "100"


# --- Rate limits ---------------------------------------------------------------------------


def remaining(response: Any) -> int:
    return int(response["X-RateLimit-Remaining"])


def test_rate_limit_headers_count_down(client_for: Any, alice: Agent) -> None:
    client = client_for(alice)

    first = client.get("/v1/auth/me")
    second = client.get("/v1/auth/me")

    # The tightest limit for a read: the API's 100/min (reads allow 200).
    assert first["X-RateLimit-Limit"] == second["X-RateLimit-Limit"] == "100"
    assert (remaining(first), remaining(second)) == (99, 98)
    reset = int(second["X-RateLimit-Reset"])
    assert time.time() <= reset <= time.time() + 61


def test_writes_show_the_tighter_write_limit(client_for: Any, alice: Agent) -> None:
    response = client_for(alice).post("/v1/probe", {"name": "Billing"}, format="json")

    assert response.status_code == 201
    assert (response["X-RateLimit-Limit"], remaining(response)) == ("50", 49)


def test_limits_are_per_agent(client_for: Any, alice: Agent, bob: Agent) -> None:
    client_for(alice).get("/v1/auth/me")

    assert remaining(client_for(bob).get("/v1/auth/me")) == 99


def test_over_the_limit_is_a_429_with_retry_after(
    client_for: Any, alice: Agent, settings: Any
) -> None:
    settings.RATELIMIT_API = "3/m"
    client = client_for(alice)

    answers = [client.get("/v1/auth/me") for _ in range(4)]

    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [remaining(r) for r in answers] == [2, 1, 0, 0]
    error = envelope(answers[-1])
    assert error["code"] == "throttled"
    assert 1 <= int(answers[-1]["Retry-After"]) <= 60


def test_the_window_resets(
    client_for: Any, alice: Agent, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.RATELIMIT_API = "3/m"
    clock = FakeClock()
    monkeypatch.setattr("django_ratelimit.core.time", clock)
    client = client_for(alice)
    for _ in range(3):
        client.get("/v1/auth/me")
    assert client.get("/v1/auth/me").status_code == 429

    clock.now += 60

    again = client.get("/v1/auth/me")
    assert again.status_code == 200
    assert remaining(again) == 2


class FakeClock:
    """Stands in for the ``time`` module inside django_ratelimit.core only."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now


def test_requests_refused_before_the_throttles_still_count(
    api_client: APIClient, settings: Any
) -> None:
    settings.RATELIMIT_API = "3/m"

    answers = [api_client.get("/v1/auth/me") for _ in range(4)]

    assert [r.status_code for r in answers] == [401, 401, 401, 429]
    assert [remaining(r) for r in answers] == [2, 1, 0, 0]


def test_unknown_v1_paths_count_too(api_client: APIClient, settings: Any) -> None:
    settings.RATELIMIT_API = "2/m"

    answers = [api_client.get("/v1/nope") for _ in range(3)]

    assert [r.status_code for r in answers] == [404, 404, 429]
    assert answers[-1]["Retry-After"]


def test_the_auth_limit_is_per_address_and_tighter(api_client: APIClient, settings: Any) -> None:
    settings.RATELIMIT_AUTH = "2/15m"
    body = {"email": "nobody@a.test"}

    answers = [api_client.post("/v1/auth/password-reset", body, format="json") for _ in range(3)]

    assert [r.status_code for r in answers] == [202, 202, 429]
    assert answers[0]["X-RateLimit-Limit"] == "2"
    # The 15-minute window, not the API's minute: but each key's window starts at its own
    # offset (django-ratelimit), so what is left of it may be anything up to 15 minutes.
    assert answers[-1]["X-RateLimit-Limit"] == "2"
    assert 1 <= int(answers[-1]["Retry-After"]) <= 15 * 60


def test_rate_limits_can_be_switched_off(client_for: Any, alice: Agent, settings: Any) -> None:
    settings.RATELIMIT_ENABLE = False

    response = client_for(alice).get("/v1/auth/me")

    assert response.status_code == 200
    assert "X-RateLimit-Limit" not in response


@pytest.mark.parametrize("value", ["100/m", "10/15m", " 5000/h ", "1/s", "3/2d"])
def test_rates_in_django_ratelimits_syntax_are_accepted(value: str) -> None:
    assert config.rate_limit("RATELIMIT_API", value) == value.strip()


@pytest.mark.parametrize("value", ["100", "100/minute", "m/100", "", "10/15"])
def test_a_malformed_rate_stops_start_up_naming_the_variable(value: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="RATELIMIT_API="):
        config.rate_limit("RATELIMIT_API", value)


# --- Idempotency ---------------------------------------------------------------------------


def test_a_replayed_post_returns_the_first_response_and_creates_nothing(
    client_for: Any, alice: Agent
) -> None:
    client = client_for(alice)
    key = {"HTTP_IDEMPOTENCY_KEY": "3f1c1a52-7a43-4b6a-9a0e-5d7d1f0c2b11"}

    first = client.post("/v1/probe", {"name": "Billing"}, format="json", **key)
    retry = client.post("/v1/probe", {"name": "Billing"}, format="json", **key)

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert Team.objects.filter(workspace=alice.workspace, name="Billing").count() == 1


def test_the_same_key_with_another_body_is_a_409(client_for: Any, alice: Agent) -> None:
    client = client_for(alice)
    key = {"HTTP_IDEMPOTENCY_KEY": "key-0001"}
    client.post("/v1/probe", {"name": "Billing"}, format="json", **key)

    response = client.post("/v1/probe", {"name": "Sales"}, format="json", **key)

    assert response.status_code == 409
    assert envelope(response)["code"] == "idempotency_key_reused"
    assert not Team.objects.filter(name="Sales").exists()


def test_keys_are_per_agent(client_for: Any, alice: Agent, workspace_a: Workspace) -> None:
    other_admin = AgentFactory(workspace=workspace_a, role=AgentRole.ADMIN)
    key = {"HTTP_IDEMPOTENCY_KEY": "shared-key"}

    client_for(alice).post("/v1/probe", {"name": "Billing"}, format="json", **key)
    response = client_for(other_admin).post("/v1/probe", {"name": "Sales"}, format="json", **key)

    assert response.status_code == 201
    assert Team.objects.filter(workspace=workspace_a).count() == 2


def test_a_failed_first_attempt_frees_the_key(client_for: Any, alice: Agent) -> None:
    client = client_for(alice)
    key = {"HTTP_IDEMPOTENCY_KEY": "key-retry"}

    failed = client.post("/v1/probe/note", {"internal": "maybe"}, format="json", **key)
    fixed = client.post("/v1/probe/note", {"internal": True}, format="json", **key)

    assert (failed.status_code, fixed.status_code) == (400, 201)


def test_a_retry_while_the_first_attempt_runs_is_a_409(client_for: Any, alice: Agent) -> None:
    client = client_for(alice)
    key = {"HTTP_IDEMPOTENCY_KEY": "in-flight"}
    client.post("/v1/probe", {"name": "Billing"}, format="json", **key)
    # As the row looks while the first attempt is still running.
    IdempotencyKey.objects.filter(key="in-flight").update(
        response_status=None, response_body=None, updated_at=time_in(0)
    )

    response = client.post("/v1/probe", {"name": "Billing"}, format="json", **key)

    assert response.status_code == 409
    assert envelope(response)["code"] == "idempotency_request_in_progress"
    assert Team.objects.filter(name="Billing").count() == 1


def test_an_abandoned_first_attempt_is_taken_over(client_for: Any, alice: Agent) -> None:
    client = client_for(alice)
    key = {"HTTP_IDEMPOTENCY_KEY": "crashed"}
    client.post("/v1/probe", {"name": "Billing"}, format="json", **key)
    # A process claimed the key and died before creating anything, longer ago than
    # IDEMPOTENCY_LOCK_TIMEOUT.
    IdempotencyKey.objects.filter(key="crashed").update(
        response_status=None, response_body=None, updated_at=time_in(-3600)
    )
    Team.objects.filter(name="Billing").delete()

    response = client.post("/v1/probe", {"name": "Billing"}, format="json", **key)

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert Team.objects.filter(name="Billing").count() == 1


def test_an_expired_key_is_free_again(client_for: Any, alice: Agent) -> None:
    client = client_for(alice)
    key = {"HTTP_IDEMPOTENCY_KEY": "old-key"}
    client.post("/v1/probe", {"name": "Billing"}, format="json", **key)
    IdempotencyKey.objects.filter(key="old-key").update(expires_at=time_in(-1))

    response = client.post("/v1/probe", {"name": "Sales"}, format="json", **key)

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response


def test_a_malformed_key_is_a_400_naming_the_header(client_for: Any, alice: Agent) -> None:
    response = client_for(alice).post(
        "/v1/probe", {"name": "Billing"}, format="json", HTTP_IDEMPOTENCY_KEY="has spaces"
    )

    assert response.status_code == 400
    assert list(envelope(response)["fields"]) == ["Idempotency-Key"]


def test_the_hourly_purge_deletes_expired_keys_and_refresh_tokens(
    client_for: Any, alice: Agent
) -> None:
    from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

    from enque.tasks import purge_expired_api_records

    client = client_for(alice)
    client.post("/v1/probe", {"name": "A"}, format="json", HTTP_IDEMPOTENCY_KEY="old")
    client.post("/v1/probe", {"name": "B"}, format="json", HTTP_IDEMPOTENCY_KEY="fresh")
    IdempotencyKey.objects.filter(key="old").update(expires_at=time_in(-1))
    OutstandingToken.objects.update(expires_at=time_in(-1))

    assert purge_expired_api_records.apply().get() == 2

    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["fresh"]
    assert not OutstandingToken.objects.exists()


def time_in(seconds: int) -> Any:
    from datetime import timedelta

    from django.utils import timezone

    return timezone.now() + timedelta(seconds=seconds)


# --- Pagination and query parameters ------------------------------------------------------


@pytest.mark.parametrize("page_size", ["0", "101", "ten", "-1", ""])
def test_a_bad_page_size_is_a_400_naming_it(client_for: Any, alice: Agent, page_size: str) -> None:
    response = client_for(alice).get(f"/v1/probe?page_size={page_size}")

    assert response.status_code == 400
    assert list(envelope(response)["fields"]) == ["page_size"]


def test_a_bad_cursor_is_a_400_naming_it(client_for: Any, alice: Agent) -> None:
    response = client_for(alice).get("/v1/probe?cursor=garbage!")

    assert response.status_code == 400
    assert list(envelope(response)["fields"]) == ["cursor"]


def test_cursor_pages_are_stable_under_inserts(
    client_for: Any, alice: Agent, workspace_a: Workspace
) -> None:
    client = client_for(alice)
    teams = [TeamFactory(workspace=workspace_a) for _ in range(5)]

    page1 = client.get("/v1/probe?page_size=2").json()
    TeamFactory(workspace=workspace_a)  # newer than everything listed so far
    page2 = client.get(page1["next"]).json()
    page3 = client.get(page2["next"]).json()

    assert set(page1) == {"results", "next", "previous"}
    assert page1["previous"] is None
    listed = [t["id"] for t in page1["results"] + page2["results"] + page3["results"]]
    assert listed == [t.pk for t in reversed(teams)]
    assert page3["next"] is None


def test_unknown_and_invalid_query_parameters_are_400s_naming_them(
    client_for: Any, alice: Agent
) -> None:
    client = client_for(alice)

    unknown = client.get("/v1/probe?colour=red")
    invalid = client.get("/v1/probe?min_id=zero")
    team = TeamFactory(workspace=alice.workspace)
    pagination_off_list = client.get(f"/v1/probe/{team.pk}?page_size=5")

    assert envelope(unknown)["fields"] == {"colour": ["Unknown query parameter."]}
    assert list(envelope(invalid)["fields"]) == ["min_id"]
    assert list(envelope(pagination_off_list)["fields"]) == ["page_size"]


def test_valid_query_parameters_reach_the_view(
    client_for: Any, alice: Agent, workspace_a: Workspace
) -> None:
    older, newer = TeamFactory(workspace=workspace_a), TeamFactory(workspace=workspace_a)

    response = client_for(alice).get(f"/v1/probe?min_id={newer.pk}")

    assert [t["id"] for t in response.json()["results"]] == [newer.pk]
    assert older.pk < newer.pk


# --- The scoped base ---------------------------------------------------------------------


def test_the_base_scopes_even_a_careless_queryset(
    client_for: Any, alice: Agent, charlie: Agent, workspace_a: Workspace, workspace_b: Workspace
) -> None:
    team_a = TeamFactory(workspace=workspace_a)
    TeamFactory(workspace=workspace_b)

    listed = client_for(alice).get("/v1/probe").json()["results"]

    assert [t["id"] for t in listed] == [team_a.pk]


def test_charlie_gets_404_for_workspace_as_object(
    client_for: Any, charlie: Agent, workspace_a: Workspace
) -> None:
    team_a = TeamFactory(workspace=workspace_a)

    response = client_for(charlie).get(f"/v1/probe/{team_a.pk}")

    assert response.status_code == 404
    assert (envelope(response)["code"], envelope(response)["message"]) == (
        "not_found",
        "Not found.",
    )


def test_a_deactivated_agents_token_is_refused(client_for: Any, bob: Agent) -> None:
    client = client_for(bob)
    Agent.objects.filter(pk=bob.pk).update(is_active=False)

    response = client.get("/v1/probe")

    assert response.status_code == 401
    assert envelope(response)["code"] == "account_inactive"


def test_a_deactivated_users_token_is_refused(client_for: Any, bob: Agent) -> None:
    client = client_for(bob)
    type(bob.user).objects.filter(pk=bob.user_id).update(is_active=False)

    assert client.get("/v1/probe").status_code == 401


def test_light_agents_read_but_may_not_write(client_for: Any, workspace_a: Workspace) -> None:
    light = client_for(AgentFactory(workspace=workspace_a, role=AgentRole.LIGHT))

    read = light.get("/v1/probe")
    write = light.post("/v1/probe", {"name": "Billing"}, format="json")

    assert read.status_code == 200
    assert write.status_code == 403
    assert envelope(write)["code"] == "light_agent"


def test_a_view_may_let_light_agents_add_internal_notes_only(
    client_for: Any, workspace_a: Workspace
) -> None:
    light = client_for(AgentFactory(workspace=workspace_a, role=AgentRole.LIGHT))

    internal = light.post("/v1/probe/note", {"internal": True}, format="json")
    public = light.post("/v1/probe/note", {"internal": False}, format="json")

    assert internal.status_code == 201
    assert public.status_code == 403
    assert envelope(public)["code"] == "light_agent"


def test_the_workspace_comes_from_the_token_never_the_request(
    client_for: Any, alice: Agent, workspace_b: Workspace
) -> None:
    response = client_for(alice).post(
        "/v1/probe", {"name": "Sneaky", "workspace": workspace_b.pk}, format="json"
    )

    assert Team.objects.get(pk=response.json()["id"]).workspace_id == alice.workspace_id


# --- OpenAPI -----------------------------------------------------------------------------


def test_the_schema_renders_and_validates(api_client: APIClient) -> None:
    response = api_client.get("/v1/schema?format=json")

    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)
    assert "ErrorEnvelope" in schema["components"]["schemas"]
    invite = schema["paths"]["/v1/agents/invite"]["post"]
    assert {"400", "401", "403", "404", "409", "413", "429"} <= set(invite["responses"])
    assert invite["responses"]["429"]["headers"]["Retry-After"]
    assert invite["responses"]["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorEnvelope"
    }
    assert "Idempotency-Key" in [p["name"] for p in invite["parameters"]]


def test_the_schema_generates_without_warnings(tmp_path: Any) -> None:
    # --fail-on-warn: a new endpoint the generator cannot describe fails here.
    call_command(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--urlconf",
        "enque.urls",
        "--file",
        str(tmp_path / "schema.yaml"),
    )


@pytest.mark.parametrize("url", ["/v1/docs", "/v1/docs/redoc"])
def test_the_docs_render(api_client: APIClient, url: str) -> None:
    response = api_client.get(url)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


def test_cors_is_closed_unless_configured(api_client: APIClient) -> None:
    response = api_client.options(
        "/v1/auth/login",
        HTTP_ORIGIN="https://evil.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )

    assert "Access-Control-Allow-Origin" not in response


def test_cors_answers_configured_origins(api_client: APIClient, settings: Any) -> None:
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example"]

    response = api_client.options(
        "/v1/auth/login",
        HTTP_ORIGIN="https://app.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,idempotency-key",
    )

    assert response["Access-Control-Allow-Origin"] == "https://app.example"
    assert "idempotency-key" in response["Access-Control-Allow-Headers"]
