"""Liveness and readiness probes.

``/healthz`` answers as long as the process serves requests. ``/readyz`` checks every
component the app needs — database, cache, channel layer, Celery broker — and answers 503
naming the ones that are down, so a load balancer stops sending traffic there.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from enque.celery import app as celery_app


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def check_cache() -> str:
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=5)
    if cache.get(key) != "1":
        raise RuntimeError("value written to the cache could not be read back")
    cache.delete(key)
    return settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]


def check_channel_layer() -> str:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")

    async def round_trip() -> None:
        channel = await layer.new_channel("readyz.")
        await layer.send(channel, {"type": "readyz.ping"})
        await layer.receive(channel)

    # On an event loop of its own, closed after: the pub/sub layer subscribes every new
    # channel and forgets it only when its loop closes, so on the server's loop (where
    # async_to_sync would run this under ASGI) each probe left a subscription behind.
    with ThreadPoolExecutor(max_workers=1) as executor:
        executor.submit(asyncio.run, round_trip()).result()
    return type(layer).__name__


def check_broker() -> str:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return conn.transport_cls if isinstance(conn.transport_cls, str) else "broker"


CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "cache": check_cache,
    "channel_layer": check_channel_layer,
    "broker": check_broker,
}


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    components: dict[str, dict[str, object]] = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            detail = check()
        except Exception as exc:  # noqa: BLE001 - a probe reports any failure, it never raises
            components[name] = {"status": "down", "error": f"{type(exc).__name__}: {exc}"}
        else:
            components[name] = {"status": "up", "backend": detail}
        components[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    ready = all(c["status"] == "up" for c in components.values())
    body: dict[str, object] = {
        "status": "ok" if ready else "unavailable",
        "redis": settings.REDIS_MODE,
        "components": components,
    }
    if settings.REDIS_MODE == "memory":
        body["warning"] = (
            "REDIS_URL=memory: in-process cache, channel layer and broker; events from a "
            "worker cannot reach browsers and tasks run inline."
        )
    return JsonResponse(body, status=200 if ready else 503)
