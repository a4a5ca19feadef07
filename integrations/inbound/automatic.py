"""Automatic mail: what it is, and the reason recorded for it.

Order matters: our own Message-IDs first (a loop), then delivery reports (bounces carry
``Auto-Submitted`` and a null ``Return-Path`` too, but are handled, not dropped), then
auto-replies (threaded as such), then everything else automatic (ignored).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from integrations.mime import ParsedEmail, is_own_message_id


class Outcome(StrEnum):
    """``InboundEmail.reason``: what became of a message (a prefix before ":" for the
    ignored ones, the header value after it)."""

    # Processed.
    NEW_TICKET = "new_ticket"
    REPLY = "reply"
    FOLLOW_UP = "follow_up"  # a reply to a closed ticket opened a new one
    AUTO_REPLY = "auto_reply"  # threaded, flagged, no reopening
    BOUNCE = "bounce"  # a note on the ticket whose mail bounced
    FORWARDED = "forwarded"  # an agent forwarded a customer's mail in
    AGENT_NOTE = "agent_note"  # an agent's emailed reply, kept as an internal note
    DUPLICATE = "duplicate_message"  # the same Message-ID came in through another mailbox
    # Ignored.
    OWN_MESSAGE = "own_message"
    FROM_OWN_MAILBOX = "from_own_mailbox"
    AUTO_SUBMITTED = "auto_submitted"
    PRECEDENCE = "precedence"
    AUTO_RESPONSE_SUPPRESS = "auto_response_suppress"
    MAILING_LIST = "mailing_list"
    NULL_RETURN_PATH = "null_return_path"
    AUTOMATED_SENDER = "automated_sender"
    AUTO_REPLY_UNTHREADED = "auto_reply_unthreaded"
    AUTO_REPLY_CLOSED = "auto_reply_closed_ticket"
    AUTO_REPLY_FROM_AGENT = "auto_reply_from_agent"
    BOUNCE_UNMATCHED = "bounce_unmatched"
    DELIVERY_STATUS = "delivery_status"  # a report that is not a failure (delayed, relayed)
    # Failed.
    NO_SENDER = "no_sender"
    # No longer given (mail with no mailbox is processed for its workspace); older rows
    # may still carry it.
    NO_MAILBOX = "no_mailbox"


class Kind(StrEnum):
    NORMAL = "normal"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    IGNORE = "ignore"


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    reason: str = ""
    # Recognised by its subject alone ("Out of office"): if it threads nowhere it is
    # treated as ordinary mail rather than dropped, since a person may have written it.
    subject_only: bool = False


_OOO_SUBJECT_RE = re.compile(
    r"^\s*(?:(?:automatic reply|auto[- ]?reply|autoreply|abwesenheitsnotiz|"
    r"automatische antwort|réponse automatique|respuesta automática)\s*:|"
    r"out of (?:the )?office\b)",
    re.IGNORECASE,
)
_AUTOMATED_LOCAL_RE = re.compile(
    r"^(?:mailer-daemon|postmaster|no[-_.]?reply|do[-_.]?not[-_.]?reply|"
    r"no[-_.]?reply[-+._].*|bounces?(?:[-+].*)?)$",
    re.IGNORECASE,
)
_FALSE_VALUES = {"no", "false", "0", "off"}


def _value(parsed: ParsedEmail, name: str) -> str:
    return parsed.first(name).split(";", 1)[0].strip().lower()


def _present(parsed: ParsedEmail, name: str) -> bool:
    return parsed.has(name) and _value(parsed, name) not in _FALSE_VALUES


def is_automated_address(address: str) -> bool:
    return bool(_AUTOMATED_LOCAL_RE.match(address.rpartition("@")[0]))


def classify(parsed: ParsedEmail, *, ignore_lists: bool) -> Verdict:
    if parsed.message_id and is_own_message_id(parsed.message_id):
        return Verdict(Kind.IGNORE, Outcome.OWN_MESSAGE)
    if parsed.report_type == "delivery-status" or (parsed.report and parsed.report.failures):
        return Verdict(Kind.BOUNCE, Outcome.BOUNCE)

    auto_submitted = _value(parsed, "auto-submitted")
    precedence = _value(parsed, "precedence")
    if auto_submitted == "auto-replied":
        return Verdict(Kind.AUTO_REPLY, f"{Outcome.AUTO_SUBMITTED}:{auto_submitted}")
    for name in ("x-autoreply", "x-autorespond"):
        if _present(parsed, name):
            return Verdict(Kind.AUTO_REPLY, f"{name}:{_value(parsed, name)}"[:200])
    if precedence == "auto_reply":
        return Verdict(Kind.AUTO_REPLY, f"{Outcome.PRECEDENCE}:{precedence}")
    if _OOO_SUBJECT_RE.match(parsed.subject) and not auto_submitted and not precedence:
        return Verdict(Kind.AUTO_REPLY, "subject", subject_only=True)

    if auto_submitted and auto_submitted != "no":
        return Verdict(Kind.IGNORE, f"{Outcome.AUTO_SUBMITTED}:{auto_submitted}"[:200])
    if precedence in ("bulk", "junk", "list"):
        return Verdict(Kind.IGNORE, f"{Outcome.PRECEDENCE}:{precedence}")
    if parsed.has("x-auto-response-suppress"):
        value = _value(parsed, "x-auto-response-suppress")
        return Verdict(Kind.IGNORE, f"{Outcome.AUTO_RESPONSE_SUPPRESS}:{value}"[:200])
    if ignore_lists:
        for name in ("list-id", "list-unsubscribe"):
            if parsed.has(name):
                return Verdict(Kind.IGNORE, f"{Outcome.MAILING_LIST}:{name}")
    if parsed.return_path == "":
        return Verdict(Kind.IGNORE, Outcome.NULL_RETURN_PATH)
    sender = parsed.from_address or parsed.sender_address
    if sender and is_automated_address(sender):
        return Verdict(Kind.IGNORE, f"{Outcome.AUTOMATED_SENDER}:{sender}"[:200])
    return Verdict(Kind.NORMAL)
