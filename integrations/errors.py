"""Failures the mail sources and transports raise, so callers can tell them apart.

``sync_mailbox`` and the outbound sender decide from the type alone whether to mark the
mailbox "reconnect needed", retry later, or record a permanent failure.
"""

from __future__ import annotations


class MailError(Exception):
    """Base of every mail-channel failure; its message is shown to admins."""


class ReconnectNeeded(MailError):
    """The grant or password no longer works: an admin must connect the mailbox again."""


class TransientMailError(MailError):
    """Worth retrying later (throttling, 5xx, network); ``retry_after`` in seconds if known."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentMailError(MailError):
    """Retrying cannot help (rejected recipient, message too large, bad configuration)."""


class SyncInProgress(MailError):
    """Another worker holds this mailbox's sync lock; one sync at a time per mailbox."""
