"""Small presentation helpers for the UI's templates."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.dates import MONTHS_3
from django.utils.safestring import SafeString, mark_safe

from tickets.services import sanitize_html

register = template.Library()


def _span(seconds: float) -> str:
    seconds = int(abs(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{max(minutes, 1)}m"


@register.filter
def time_left(due: datetime | None) -> str:
    """'2h 5m left' or '1d 3h overdue'."""
    if due is None:
        return ""
    seconds = (due - timezone.now()).total_seconds()
    return f"{_span(seconds)} overdue" if seconds < 0 else f"{_span(seconds)} left"


# The thread formats two times per message; Django's ``date`` filter (the format string
# parsed on every call, the format looked up for the language) cost ~55 µs a call, a third
# of the thread's rendering at 50 messages (bench/run.py). These give the same text.


def _local_time_filter(format_local: Callable[[datetime], str]) -> Callable[..., str]:
    """Register ``format_local`` as a filter of a datetime in the current time zone (as the
    template engine converts it for ``date``); no value is an empty string."""

    @functools.wraps(format_local)
    def time_filter(value: datetime | None) -> str:
        if not value:
            return ""
        return format_local(timezone.localtime(value) if timezone.is_aware(value) else value)

    return register.filter(time_filter)


@_local_time_filter
def message_time(local: datetime) -> str:
    """``value|date:"M j, H:i"``: "Nov 26, 09:05"."""
    return f"{str(MONTHS_3[local.month]).title()} {local.day}, {local:%H:%M}"


@_local_time_filter
def exact_time(local: datetime) -> str:
    """``value|date:"Y-m-d H:i:s e"``: "2026-11-26 09:05:07 UTC"."""
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname() or ''}"


@register.filter
def ago(value: datetime | None) -> str:
    """Compact relative time: 'now', '5m', '3h', '2d', then the date."""
    if value is None:
        return ""
    seconds = (timezone.now() - value).total_seconds()
    if seconds < 60:
        return "now"
    if seconds < 86400 * 7:
        return f"{_span(seconds).split()[0]} ago"
    local = timezone.localtime(value)
    if local.year == timezone.localtime().year:
        return local.strftime("%b %-d")
    return local.strftime("%b %-d, %Y")


@register.filter
def initials(name: str) -> str:
    words = [w for w in str(name or "").replace("@", " ").split() if w[:1].isalnum()]
    return "".join(w[0] for w in words[:2]).upper() or "?"


AVATAR_HUES = 8


@register.filter
def avatar_hue(value: object) -> int:
    """One of the CSS's hue-0..hue-7 classes, stable per person, so avatars are told apart
    at a glance (classes, not a style attribute: the CSP allows no inline style)."""
    return sum(ord(c) for c in str(value)) * 7 % AVATAR_HUES


@register.filter
def contains(values: object, item: object) -> bool:
    try:
        return str(item) in [str(v) for v in values]  # type: ignore[attr-defined]
    except TypeError:
        return False


@register.filter
def clean_html(value: str) -> SafeString:
    """Stored HTML (sanitised when written) sanitised again for display."""
    return mark_safe(sanitize_html(value or ""))  # noqa: S308 -- nh3 output
