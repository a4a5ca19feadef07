"""Rate limits: django-ratelimit's counters in the cache, applied as DRF throttles.

Four limits, each a setting read from the environment ("100/m", "10/15m", "5000/h"):

=========  ============================  ==========================================
scope      setting (default)             counts
=========  ============================  ==========================================
api        RATELIMIT_API (100/m)         every /v1 request
read       RATELIMIT_READ (200/m)        GET, HEAD, OPTIONS
write      RATELIMIT_WRITE (50/m)        POST, PUT, PATCH, DELETE
auth       RATELIMIT_AUTH (10/15m)       register, login, password reset, invitations
=========  ============================  ==========================================

Requests are counted per agent once a token authenticated them, per client address
otherwise (and always per address for ``auth``). Counters live in the cache
(``RATELIMIT_USE_CACHE``): Redis in every real deployment, so all processes share them.
Windows are fixed, as django-ratelimit's are: each key's window starts at a per-key offset
so all clients do not reset at the same second.

Every response that went through a throttle carries ``X-RateLimit-Limit``,
``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (Unix time, seconds) of the tightest
limit that applied; a refusal is a 429 in the error envelope with ``Retry-After``
(seconds). django-ratelimit's own decorator answers 403 without headers, so it is not used.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django_ratelimit.core import get_usage
from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import BaseThrottle

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView


@dataclass(frozen=True)
class Usage:
    scope: str
    limit: int
    count: int
    reset_at: int  # Unix time at which the window ends
    retry_after: int  # seconds until then (at least 1)

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit


@dataclass
class RateLimitState:
    """The limits a request was counted against; ``RequestIdMiddleware`` writes the headers."""

    usages: list[Usage] = field(default_factory=list)

    def tightest(self) -> Usage | None:
        if not self.usages:
            return None
        exceeded = [usage for usage in self.usages if usage.exceeded]
        if exceeded:
            # Refused: report the limit the client has to wait out longest (its Retry-After).
            return max(exceeded, key=lambda usage: usage.retry_after)
        return min(self.usages, key=lambda usage: (usage.remaining, -usage.retry_after))

    def apply_headers(self, response: HttpResponseBase) -> None:
        usage = self.tightest()
        if usage is None:
            return
        response["X-RateLimit-Limit"] = str(usage.limit)
        response["X-RateLimit-Remaining"] = str(usage.remaining)
        response["X-RateLimit-Reset"] = str(usage.reset_at)


def _django_request(request: Any) -> HttpRequest:
    return getattr(request, "_request", request)


def rate_limit_state(request: Any) -> RateLimitState:
    django_request = _django_request(request)
    state = getattr(django_request, "rate_limit", None)
    if state is None:
        state = RateLimitState()
        django_request.rate_limit = state  # type: ignore[attr-defined]
    return state


def was_counted(request: Any) -> bool:
    return getattr(_django_request(request), "rate_limit", None) is not None


def configured_rate(scope: str) -> str:
    """The rate of a scope, read at request time so tests can override the setting."""
    return getattr(settings, f"RATELIMIT_{scope.upper()}")


def count(
    request: Any,
    *,
    scope: str,
    rate: str | None = None,
    key: str | Callable[[str, HttpRequest], str] | None = None,
    increment: bool = True,
) -> Usage | None:
    """Count this request against ``scope`` (per agent, else per address) and record it.

    Returns None when rate limiting is switched off (RATELIMIT_ENABLE = False).
    """
    django_request = _django_request(request)
    if key is None:
        agent = getattr(django_request, "agent", None)
        key = "ip" if agent is None else _agent_key(agent.pk)
    raw = get_usage(
        django_request,
        group=f"enque.{scope}",
        key=key,
        rate=rate or configured_rate(scope),
        increment=increment,
    )
    if raw is None:
        return None
    time_left = max(1, int(raw["time_left"]))
    usage = Usage(
        scope=scope,
        limit=raw["limit"],
        count=raw["count"],
        reset_at=int(time.time()) + time_left,
        retry_after=time_left,
    )
    rate_limit_state(django_request).usages.append(usage)
    return usage


def _agent_key(agent_id: int) -> Callable[[str, HttpRequest], str]:
    return lambda group, request: f"agent:{agent_id}"


class RateLimitThrottle(BaseThrottle):
    """One django-ratelimit counter as a DRF throttle."""

    scope: str = ""
    # None: every method counts.
    methods: frozenset[str] | None = None
    # The auth scope counts per address even for a signed-in caller.
    per_address: bool = False

    def __init__(self) -> None:
        self.usage: Usage | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        if self.methods is not None and request.method not in self.methods:
            return True
        self.usage = count(request, scope=self.scope, key="ip" if self.per_address else None)
        return self.usage is None or not self.usage.exceeded

    def wait(self) -> float | None:
        return self.usage.retry_after if self.usage is not None else None


class ApiRateThrottle(RateLimitThrottle):
    scope = "api"


class ReadRateThrottle(RateLimitThrottle):
    scope = "read"
    methods = frozenset(SAFE_METHODS)


class WriteRateThrottle(RateLimitThrottle):
    scope = "write"
    methods = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AuthRateThrottle(RateLimitThrottle):
    """For the endpoints that take a password or a token by mail: 10 per 15 minutes."""

    scope = "auth"
    per_address = True


def check_before_error(view: APIView, exc: Exception) -> Exception:
    """Count a request that failed before DRF ran its throttles (DRF authenticates and checks
    permissions first), so a flood of bad tokens is limited too and every /v1 answer carries
    the rate-limit headers. Returns the exception to render: ``Throttled`` once over a limit.
    """
    request = view.request
    if request is None or was_counted(request) or isinstance(exc, exceptions.Throttled):
        return exc
    try:
        view.check_throttles(request)
    except exceptions.Throttled as throttled:
        return throttled
    return exc


def count_unrouted_request(request: HttpRequest) -> int | None:
    """For a /v1 path no view answers: count it against the address's API limit.
    Returns the seconds to wait when over the limit, else None."""
    usage = count(request, scope="api", key="ip")
    if usage is not None and usage.exceeded:
        return usage.retry_after
    return None


# --- Failed sign-ins per email address: the second brake on password guessing ----------


def _email_key(email: str) -> Callable[[str, HttpRequest], str]:
    # Hashed so the cache never holds the address itself.
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    return lambda group, request: f"email:{digest}"


def login_failures_wait(request: Any, email: str) -> int | None:
    """Seconds to wait when sign-ins to this email address failed too often
    (RATELIMIT_LOGIN_FAILURES), else None. Looks without counting; the same for existing
    and unknown addresses."""
    raw = get_usage(
        _django_request(request),
        group="enque.login_failures",
        key=_email_key(email),
        rate=configured_rate("login_failures"),
        increment=False,
    )
    if raw is None or raw["count"] < raw["limit"]:
        return None
    return max(1, math.ceil(raw["time_left"]))


def record_login_failure(request: Any, email: str) -> None:
    get_usage(
        _django_request(request),
        group="enque.login_failures",
        key=_email_key(email),
        rate=configured_rate("login_failures"),
        increment=True,
    )
