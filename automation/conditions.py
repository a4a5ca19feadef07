"""Rule conditions: which operators fit which field, what value each takes, and how a
condition is checked against a ticket.

Every field has a *kind* that decides its operators and values:

=============  ===================================================  =========================
kind           operators                                            value
=============  ===================================================  =========================
text           is, is_not, contains, not_contains                   a string
               matches                                              a regular expression
               in, not_in                                           a list of strings
choice         is, is_not                                           one of the field's values
               in, not_in                                           a list of them
               gt, lt (priority only: low < normal < high < urgent) one of them
reference      is, is_not                                           an id in the workspace
               in, not_in                                           a list of ids
               is_set, is_not_set                                   null
tags           contains, not_contains (has / lacks the tag)         a tag name
               in, not_in (has any / none of them)                  a list of tag names
               is_set, is_not_set (has any tag / none)              null
flag           is                                                   true or false
hours          gt, lt                                               hours (a number >= 0)
               is_set, is_not_set (reply hours only: ever replied)  null
sla_hours      gt, lt (hours left until the next due time; < 0      hours (a number)
               when overdue), is_set, is_not_set                    null
=============  ===================================================  =========================

Text comparisons ignore case. ``body`` is the message that triggered the rule (the new
comment for reply and note triggers), else the ticket's first message. ``from_address`` and
``from_domain`` are the customer's. ``business_hours`` is whether the workspace's default
business hours are open now (no default schedule: always open). ``sla_breached`` is true
while a running SLA target is overdue or once a breach was recorded.

``validate`` checks a (field, operator, value) triple and returns the value normalised;
``evaluate`` checks one against ``Facts``; ``prefilter`` turns the conditions it can into a
``Q`` that narrows the tickets a time rule looks at (a superset: ``evaluate`` decides).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.db.models import Q

from automation import business_hours
from automation.models import ConditionField as F
from automation.models import ConditionOperator as Op
from enque.errors import InvalidInput
from tickets.models import TicketChannel, TicketPriority, TicketStatus

MAX_TEXT = 1000
MAX_PATTERN = 500
MAX_LIST = 100
MAX_HOURS = 24 * 366 * 5
# Regular expressions run on at most this much text: rules are written by admins, but a
# slow pattern on a huge email must not stall the engine.
MAX_MATCHED_TEXT = 100_000

PRIORITY_ORDER = [p.value for p in TicketPriority]

TEXT, CHOICE, REFERENCE, TAGS, FLAG, HOURS, SLA_HOURS = (
    "text",
    "choice",
    "reference",
    "tags",
    "flag",
    "hours",
    "sla_hours",
)

FIELD_KINDS: dict[str, str] = {
    F.SUBJECT: TEXT,
    F.BODY: TEXT,
    F.FROM_ADDRESS: TEXT,
    F.FROM_DOMAIN: TEXT,
    F.MAILBOX: REFERENCE,
    F.CHANNEL: CHOICE,
    F.STATUS: CHOICE,
    F.PRIORITY: CHOICE,
    F.ASSIGNEE: REFERENCE,
    F.TEAM: REFERENCE,
    F.CATEGORY: REFERENCE,
    F.TAGS: TAGS,
    F.CUSTOMER: REFERENCE,
    F.COMPANY: REFERENCE,
    F.BUSINESS_HOURS: FLAG,
    F.HOURS_SINCE_CREATED: HOURS,
    F.HOURS_SINCE_UPDATED: HOURS,
    F.HOURS_SINCE_CUSTOMER_REPLY: HOURS,
    F.HOURS_SINCE_AGENT_REPLY: HOURS,
    F.SLA_DUE_WITHIN_HOURS: SLA_HOURS,
    F.SLA_BREACHED: FLAG,
}

OPERATORS: dict[str, tuple[str, ...]] = {
    TEXT: (Op.IS, Op.IS_NOT, Op.CONTAINS, Op.NOT_CONTAINS, Op.MATCHES, Op.IN, Op.NOT_IN),
    CHOICE: (Op.IS, Op.IS_NOT, Op.IN, Op.NOT_IN),
    REFERENCE: (Op.IS, Op.IS_NOT, Op.IN, Op.NOT_IN, Op.IS_SET, Op.IS_NOT_SET),
    TAGS: (Op.CONTAINS, Op.NOT_CONTAINS, Op.IN, Op.NOT_IN, Op.IS_SET, Op.IS_NOT_SET),
    FLAG: (Op.IS,),
    HOURS: (Op.GREATER_THAN, Op.LESS_THAN),
    SLA_HOURS: (Op.GREATER_THAN, Op.LESS_THAN, Op.IS_SET, Op.IS_NOT_SET),
}


def operators_for(field: str) -> tuple[str, ...]:
    kind = FIELD_KINDS[field]
    operators = OPERATORS[kind]
    if field == F.PRIORITY:
        operators = (*operators, Op.GREATER_THAN, Op.LESS_THAN)
    if field in (F.HOURS_SINCE_CUSTOMER_REPLY, F.HOURS_SINCE_AGENT_REPLY):
        operators = (*operators, Op.IS_SET, Op.IS_NOT_SET)
    return tuple(str(op) for op in operators)


CHOICES: dict[str, list[str]] = {
    F.CHANNEL: list(TicketChannel.values),
    F.STATUS: list(TicketStatus.values),
    F.PRIORITY: PRIORITY_ORDER,
}

# Reference fields: the model an id names, and the Ticket attribute holding it.
REFERENCES: dict[str, tuple[str, str, str]] = {
    F.MAILBOX: ("integrations", "MailboxConnection", "mailbox_id"),
    F.ASSIGNEE: ("workspaces", "Agent", "assignee_id"),
    F.TEAM: ("workspaces", "Team", "team_id"),
    F.CATEGORY: ("tickets", "Category", "category_id"),
    F.CUSTOMER: ("workspaces", "Customer", "customer_id"),
    F.COMPANY: ("workspaces", "Company", "company_id"),
}

# The ticket timestamp each time field counts from: also the condition window's anchor.
HOUR_ANCHORS: dict[str, str] = {
    F.HOURS_SINCE_CREATED: "created_at",
    F.HOURS_SINCE_UPDATED: "updated_at",
    F.HOURS_SINCE_CUSTOMER_REPLY: "last_customer_reply_at",
    F.HOURS_SINCE_AGENT_REPLY: "last_agent_reply_at",
}
TIME_FIELDS = frozenset({*HOUR_ANCHORS, F.SLA_DUE_WITHIN_HOURS, F.SLA_BREACHED})


# --- Validation -------------------------------------------------------------------------------


def _invalid(message: str, where: str, code: str = "invalid_condition") -> InvalidInput:
    return InvalidInput(message, code=code, field=where)


def validate(
    field: str, operator: str, value: Any, *, workspace_id: int, where: str = "condition"
) -> Any:
    """The value, normalised, if (field, operator, value) fits; else a 400 naming the part
    that does not (``<where>.field``, ``<where>.operator`` or ``<where>.value``)."""
    if field not in FIELD_KINDS:
        raise _invalid(
            f"Unknown field “{field}”. Fields: {', '.join(FIELD_KINDS)}.", f"{where}.field"
        )
    allowed = operators_for(field)
    if operator not in allowed:
        raise _invalid(
            f"The operator “{operator}” does not fit the field “{field}”; "
            f"use one of: {', '.join(allowed)}.",
            f"{where}.operator",
        )
    kind = FIELD_KINDS[field]
    at = f"{where}.value"
    if operator in (Op.IS_SET, Op.IS_NOT_SET):
        if value not in (None, "", True):
            raise _invalid(f"“{operator}” takes no value.", at)
        return None
    if kind == TEXT:
        return _text_value(field, operator, value, at)
    if kind == CHOICE:
        choices = CHOICES[field]
        if operator in (Op.IN, Op.NOT_IN):
            values = _list(value, at)
            for item in values:
                _choice(item, choices, field, at)
            return list(dict.fromkeys(values))
        return _choice(value, choices, field, at)
    if kind == REFERENCE:
        app_label, model_name, _attr = REFERENCES[field]
        model = apps.get_model(app_label, model_name)
        ids = _list(value, at) if operator in (Op.IN, Op.NOT_IN) else [value]
        for item in ids:
            if isinstance(item, bool) or not isinstance(item, int):
                raise _invalid(f"The {field} is given by its id (an integer).", at)
        found = set(
            model.objects.filter(workspace_id=workspace_id, pk__in=ids).values_list("pk", flat=True)
        )
        missing = [i for i in ids if i not in found]
        if missing:
            raise _invalid(
                f"Unknown {field} in this workspace: {missing[0]}.", at, code="invalid_reference"
            )
        return list(dict.fromkeys(ids)) if operator in (Op.IN, Op.NOT_IN) else value
    if kind == TAGS:
        if operator in (Op.IN, Op.NOT_IN):
            return [_tag(item, at) for item in _list(value, at)]
        return _tag(value, at)
    if kind == FLAG:
        if not isinstance(value, bool):
            raise _invalid(f"The {field} condition takes true or false.", at)
        return value
    # HOURS, SLA_HOURS: a number of hours.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid("A number of hours is required.", at)
    low = -MAX_HOURS if kind == SLA_HOURS else 0
    if not low <= value <= MAX_HOURS:
        raise _invalid(f"Hours must be between {low} and {MAX_HOURS}.", at)
    return value


def _list(value: Any, at: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise _invalid("A non-empty list is required.", at)
    if len(value) > MAX_LIST:
        raise _invalid(f"At most {MAX_LIST} values.", at)
    return value


def _choice(value: Any, choices: list[str], field: str, at: str) -> str:
    if value not in choices:
        raise _invalid(f"The {field} must be one of: {', '.join(choices)}.", at)
    return value


def _string(value: Any, at: str, max_length: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _invalid("A non-empty string is required.", at)
    if len(value) > max_length:
        raise _invalid(f"At most {max_length} characters.", at)
    return value


def _tag(value: Any, at: str) -> str:
    name = " ".join(_string(value, at, 64).split())
    return name


def _text_value(field: str, operator: str, value: Any, at: str) -> Any:
    if operator in (Op.IN, Op.NOT_IN):
        return [_string(item, at) for item in _list(value, at)]
    if operator == Op.MATCHES:
        pattern = _string(value, at, MAX_PATTERN)
        try:
            re.compile(pattern)
        except re.error as exc:
            raise _invalid(f"Not a valid regular expression: {exc}.", at) from None
        return pattern
    return _string(value, at)


# --- Facts: what conditions read --------------------------------------------------------------


class Facts:
    """What the conditions of one evaluation read about a ticket, each loaded once.

    ``invalidate()`` after a rule changed the ticket, so later rules see the new state.
    """

    def __init__(
        self,
        ticket: Any,
        *,
        now: datetime,
        comment_id: int | None = None,
        default_schedule: Callable[[], business_hours.Schedule | None] | None = None,
    ) -> None:
        self.ticket = ticket
        self.now = now
        self.comment_id = comment_id
        self._default_schedule = default_schedule
        self._cache: dict[str, Any] = {}

    def invalidate(self) -> None:
        keep = {k: v for k, v in self._cache.items() if k in ("body", "schedule")}
        self._cache = keep

    def _get(self, key: str, load: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = load()
        return self._cache[key]

    @property
    def tags(self) -> list[str]:
        prefetched = getattr(self.ticket, "_prefetched_objects_cache", {}).get("tags")
        if prefetched is not None and "tags" not in self._cache:
            self._cache["tags"] = [t.name.lower() for t in prefetched]
        return self._get(
            "tags",
            lambda: [n.lower() for n in self.ticket.tags.values_list("name", flat=True)],
        )

    @property
    def body(self) -> str:
        def load() -> str:
            from tickets.models import Comment, TicketBody

            if self.comment_id:
                text = (
                    Comment.objects.filter(pk=self.comment_id, ticket_id=self.ticket.pk)
                    .values_list("body_text", flat=True)
                    .first()
                )
                if text is not None:
                    return text
            text = (
                TicketBody.objects.filter(ticket_id=self.ticket.pk)
                .values_list("text", flat=True)
                .first()
            )
            return text or ""

        return self._get("body", load)

    @property
    def sla(self) -> Any:
        def load() -> Any:
            from automation.models import TicketSLA

            return TicketSLA.objects.filter(ticket_id=self.ticket.pk).first()

        return self._get("sla", load)

    @property
    def schedule_open(self) -> bool:
        def load() -> bool:
            schedule = self._default_schedule() if self._default_schedule else None
            return business_hours.is_open(self.now, schedule)

        return self._get("open", load)

    def next_due(self) -> datetime | None:
        ticket = self.ticket
        dues = []
        if ticket.first_response_due_at and ticket.first_response_at is None:
            dues.append(ticket.first_response_due_at)
        if ticket.sla_due_at and ticket.resolved_at is None:
            dues.append(ticket.sla_due_at)
        return min(dues) if dues else None

    def sla_breached(self) -> bool:
        due = self.next_due()
        if due is not None and due <= self.now:
            return True
        sla = self.sla
        return bool(sla and (sla.first_response_breached_at or sla.resolution_breached_at))

    def value(self, field: str) -> Any:
        """The ticket's value for ``field``, as conditions compare it."""
        ticket = self.ticket
        if field == F.SUBJECT:
            return ticket.subject
        if field == F.BODY:
            return self.body
        if field == F.FROM_ADDRESS:
            return ticket.customer.email
        if field == F.FROM_DOMAIN:
            return ticket.customer.email.rpartition("@")[2]
        if field in (F.CHANNEL, F.STATUS, F.PRIORITY):
            return getattr(ticket, field)
        if field in REFERENCES:
            return getattr(ticket, REFERENCES[field][2])
        if field == F.TAGS:
            return self.tags
        if field == F.BUSINESS_HOURS:
            return self.schedule_open
        if field in HOUR_ANCHORS:
            anchor = getattr(ticket, HOUR_ANCHORS[field])
            return None if anchor is None else (self.now - anchor).total_seconds() / 3600
        if field == F.SLA_DUE_WITHIN_HOURS:
            due = self.next_due()
            return None if due is None else (due - self.now).total_seconds() / 3600
        if field == F.SLA_BREACHED:
            return self.sla_breached()
        raise ValueError(f"Unknown field {field!r}")

    def anchor(self, field: str) -> str:
        """What a time condition counts from, for the condition window's key."""
        if field in HOUR_ANCHORS:
            value = getattr(self.ticket, HOUR_ANCHORS[field])
        else:
            value = self.next_due()
        return value.isoformat() if value else "-"


# --- Evaluation -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def _text_matches(operator: str, actual: str, value: Any) -> bool:
    text = (actual or "").lower()
    if operator == Op.IS:
        return text == value.lower()
    if operator == Op.IS_NOT:
        return text != value.lower()
    if operator == Op.CONTAINS:
        return value.lower() in text
    if operator == Op.NOT_CONTAINS:
        return value.lower() not in text
    if operator == Op.MATCHES:
        return _pattern(value).search((actual or "")[:MAX_MATCHED_TEXT]) is not None
    if operator == Op.IN:
        return text in {v.lower() for v in value}
    if operator == Op.NOT_IN:
        return text not in {v.lower() for v in value}
    return False


def compare(field: str, operator: str, actual: Any, value: Any) -> bool:
    kind = FIELD_KINDS[field]
    if operator == Op.IS_SET:
        return bool(actual) if kind == TAGS else actual is not None
    if operator == Op.IS_NOT_SET:
        return not actual if kind == TAGS else actual is None
    if kind == TEXT:
        return _text_matches(operator, actual, value)
    if kind == TAGS:
        tags = set(actual)
        if operator == Op.CONTAINS:
            return value.lower() in tags
        if operator == Op.NOT_CONTAINS:
            return value.lower() not in tags
        wanted = {v.lower() for v in value}
        return bool(tags & wanted) if operator == Op.IN else not tags & wanted
    if operator == Op.IS:
        return actual == value
    if operator == Op.IS_NOT:
        return actual != value
    if operator == Op.IN:
        return actual in value
    if operator == Op.NOT_IN:
        return actual not in value
    if field == F.PRIORITY:
        actual, value = PRIORITY_ORDER.index(actual), PRIORITY_ORDER.index(value)
    if actual is None:
        return False
    if operator == Op.GREATER_THAN:
        return actual > value
    if operator == Op.LESS_THAN:
        return actual < value
    return False


@dataclass(frozen=True)
class ConditionResult:
    id: int | None
    field: str
    operator: str
    value: Any
    actual: Any
    matched: bool


def check(condition: Any, facts: Facts) -> ConditionResult:
    actual = facts.value(condition.field)
    matched = compare(condition.field, condition.operator, actual, condition.value)
    return ConditionResult(
        id=condition.pk,
        field=condition.field,
        operator=condition.operator,
        value=condition.value,
        actual=_presentable(actual),
        matched=matched,
    )


def _presentable(actual: Any) -> Any:
    if isinstance(actual, float):
        return round(actual, 2)
    return actual


def matches(match: str, conditions: Sequence[Any], facts: Facts) -> bool:
    """All (or any) of the conditions hold; no conditions always match. Short-circuits."""
    if not conditions:
        return True
    results = (check(c, facts).matched for c in conditions)
    return any(results) if match == "any" else all(results)


def explain(match: str, conditions: Sequence[Any], facts: Facts) -> tuple[bool, list[Any]]:
    """Every condition's result (for the dry run), and whether the rule matches."""
    results = [check(c, facts) for c in conditions]
    if not results:
        return True, []
    flags = [r.matched for r in results]
    return (any(flags) if match == "any" else all(flags)), results


# --- SQL prefilter for time rules -------------------------------------------------------------


def _q_for(condition: Any, now: datetime) -> Q | None:
    field, operator, value = condition.field, condition.operator, condition.value
    if field in (F.STATUS, F.CHANNEL, F.PRIORITY):
        if operator == Op.IS:
            return Q(**{field: value})
        if operator == Op.IS_NOT:
            return ~Q(**{field: value})
        if operator == Op.IN:
            return Q(**{f"{field}__in": value})
        if operator == Op.NOT_IN:
            return ~Q(**{f"{field}__in": value})
        if field == F.PRIORITY and operator in (Op.GREATER_THAN, Op.LESS_THAN):
            index = PRIORITY_ORDER.index(value)
            chosen = (
                PRIORITY_ORDER[index + 1 :]
                if operator == Op.GREATER_THAN
                else PRIORITY_ORDER[:index]
            )
            return Q(priority__in=chosen)
        return None
    if field in REFERENCES:
        attr = REFERENCES[field][2]
        if operator == Op.IS:
            return Q(**{attr: value})
        if operator == Op.IS_NOT:
            return ~Q(**{attr: value})
        if operator == Op.IN:
            return Q(**{f"{attr}__in": value})
        if operator == Op.NOT_IN:
            return ~Q(**{f"{attr}__in": value})
        if operator == Op.IS_SET:
            return Q(**{f"{attr}__isnull": False})
        if operator == Op.IS_NOT_SET:
            return Q(**{f"{attr}__isnull": True})
        return None
    if field in HOUR_ANCHORS:
        anchor = HOUR_ANCHORS[field]
        if operator in (Op.GREATER_THAN, Op.LESS_THAN):
            threshold = now - timedelta(hours=value)
            # More hours since the anchor means an earlier anchor.
            lookup = "lt" if operator == Op.GREATER_THAN else "gt"
            return Q(**{f"{anchor}__{lookup}": threshold})
        if operator == Op.IS_SET:
            return Q(**{f"{anchor}__isnull": False})
        if operator == Op.IS_NOT_SET:
            return Q(**{f"{anchor}__isnull": True})
    return None


def prefilter(match: str, conditions: Iterable[Any], now: datetime) -> Q:
    """A ``Q`` every matching ticket satisfies (it may let others through)."""
    parts = [_q_for(c, now) for c in conditions]
    if match == "any":
        if not parts or any(p is None for p in parts):
            return Q()
        combined = parts[0]
        for part in parts[1:]:
            combined |= part
        return combined
    combined = Q()
    for part in parts:
        if part is not None:
            combined &= part
    return combined
