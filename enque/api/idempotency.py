"""``Idempotency-Key`` on POST: a retried request creates nothing new.

Every POST through ``EnqueViewMixin`` (so every ``/v1`` POST endpoint) may carry an
``Idempotency-Key`` header (1-255 visible ASCII characters). Keys are per agent and live 24
hours (``IDEMPOTENCY_KEY_TTL``):

- the first request with a key claims it (a row with a unique (agent, key) constraint), runs,
  and its 2xx response is stored;
- a retry with the same key and the same request (method, path, body) gets the stored
  response again, with ``Idempotent-Replayed: true``, and runs nothing;
- the same key with a different request is a 409 ``idempotency_key_reused``;
- a retry while the first attempt still runs is a 409 ``idempotency_request_in_progress``
  (retry later); a claim left behind by a crashed process is taken over after
  ``IDEMPOTENCY_LOCK_TIMEOUT`` seconds;
- a first attempt that failed (4xx/5xx) created nothing, so its claim is released and the
  key may be used again.

Storage is the ``workspaces.IdempotencyKey`` model rather than the cache: a cache may evict
or lose keys (a Redis restart) inside the 24 hours, and the database's unique constraint is
what makes exactly one of two concurrent first attempts win. Requests without an agent
(register, login) ignore the header, and views whose responses hold credentials
(``idempotent = False``: token refresh, workspace switch) never store them.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from enque.errors import Conflict
from workspaces.models import IdempotencyKey

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
# Response headers worth replaying (the rest are recomputed for the retry).
STORED_HEADERS = ("Location",)


class Replay(Exception):
    """Not an error: carries the stored response of the first attempt back to the view."""

    def __init__(self, response: Response) -> None:
        super().__init__("idempotent replay")
        self.response = response


@dataclass(frozen=True)
class Claim:
    record_id: int


def begin(request: Request, view: APIView) -> Claim | None:
    """Claim the request's key, or raise ``Replay`` / ``Conflict``. None: nothing to do."""
    if request.method != "POST" or not getattr(view, "idempotent", True):
        return None
    key = request.headers.get(HEADER)
    agent = getattr(request, "agent", None)
    if key is None or agent is None:
        return None
    if not KEY_RE.match(key):
        raise exceptions.ValidationError(
            {HEADER: ["Use 1 to 255 visible ASCII characters (a UUID is a good key)."]}
        )
    fingerprint = request_fingerprint(request)
    now = timezone.now()
    try:
        with transaction.atomic():
            record = IdempotencyKey.objects.create(
                workspace_id=agent.workspace_id,
                agent=agent,
                key=key,
                fingerprint=fingerprint,
                expires_at=now + timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL),
            )
        return Claim(record.pk)
    except IntegrityError:
        pass  # the key was used before (or is being used right now)

    record = IdempotencyKey.objects.filter(agent=agent, key=key).first()
    if record is None or record.expires_at <= now:
        # Expired (or purged in between): the key is free again.
        return _take_over(record, agent=agent, key=key, fingerprint=fingerprint, now=now)
    if record.fingerprint != fingerprint:
        raise Conflict(
            "This Idempotency-Key was used with a different request.",
            code="idempotency_key_reused",
        )
    if record.response_status is None:
        stale = record.updated_at <= now - timedelta(seconds=settings.IDEMPOTENCY_LOCK_TIMEOUT)
        if stale:
            return _take_over(record, agent=agent, key=key, fingerprint=fingerprint, now=now)
        raise Conflict(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            code="idempotency_request_in_progress",
        )
    raise Replay(
        Response(
            record.response_body,
            status=record.response_status,
            headers={**record.response_headers, REPLAYED_HEADER: "true"},
        )
    )


def _take_over(
    record: IdempotencyKey | None, *, agent: Any, key: str, fingerprint: str, now: Any
) -> Claim:
    """Claim an expired or abandoned key: a compare-and-swap on the row we looked at, so
    of two retries racing for it exactly one wins."""
    values = {
        "fingerprint": fingerprint,
        "response_status": None,
        "response_body": None,
        "response_headers": {},
        "expires_at": now + timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL),
        "updated_at": now,
    }
    if record is None:
        try:
            with transaction.atomic():
                record = IdempotencyKey.objects.create(
                    workspace_id=agent.workspace_id, agent=agent, key=key, **values
                )
            return Claim(record.pk)
        except IntegrityError:
            pass
    elif IdempotencyKey.objects.filter(pk=record.pk, updated_at=record.updated_at).update(**values):
        return Claim(record.pk)
    raise Conflict(
        "A request with this Idempotency-Key is still being processed; retry shortly.",
        code="idempotency_request_in_progress",
    )


def finish(claim: Claim | None, response: Response) -> None:
    """Store a successful first response for replay; release the key after a failure."""
    if claim is None:
        return
    if 200 <= response.status_code < 300:
        IdempotencyKey.objects.filter(pk=claim.record_id).update(
            response_status=response.status_code,
            response_body=_json_safe(getattr(response, "data", None)),
            response_headers={
                name: response[name] for name in STORED_HEADERS if response.has_header(name)
            },
            updated_at=timezone.now(),
        )
    else:
        IdempotencyKey.objects.filter(pk=claim.record_id).delete()


def request_fingerprint(request: Request) -> str:
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.path}\n".encode())
    digest.update(json.dumps(_canonical(request.data), sort_keys=True, cls=JSONEncoder).encode())
    return digest.hexdigest()


def _canonical(data: Any) -> Any:
    """The parsed body in a form that does not depend on key order or multipart boundaries."""
    if hasattr(data, "lists"):  # QueryDict (form or multipart): every value of every key
        return {key: [_canonical(value) for value in values] for key, values in data.lists()}
    if isinstance(data, UploadedFile):
        content = hashlib.sha256()
        for chunk in data.chunks():
            content.update(chunk)
        data.seek(0)
        return {"file": data.name, "size": data.size, "sha256": content.hexdigest()}
    return data


def _json_safe(data: Any) -> Any:
    return json.loads(json.dumps(data, cls=JSONEncoder))


def purge_expired(*, now: Any = None) -> int:
    """Delete keys past their 24 hours (hourly, enque.tasks); returns how many."""
    deleted, _ = IdempotencyKey.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted
