"""Typed domain errors. Services raise these; the API's exception handler renders each in
the one error envelope, with its ``code`` and HTTP status; the UI shows ``message``."""

from __future__ import annotations


class EnqueError(Exception):
    status_code = 400
    default_code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.field = field

    def as_dict(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return body


class InvalidInput(EnqueError):
    """The request asks for something impossible (400), e.g. a foreign workspace's team."""

    status_code = 400
    default_code = "invalid"


class NotFound(EnqueError):
    """Missing, or belonging to another workspace: the two are indistinguishable (404)."""

    status_code = 404
    default_code = "not_found"


class Forbidden(EnqueError):
    """The actor's role does not allow this (403)."""

    status_code = 403
    default_code = "forbidden"


class Conflict(EnqueError):
    """The object's state does not allow this now, e.g. a ticket already merged (409)."""

    status_code = 409
    default_code = "conflict"
