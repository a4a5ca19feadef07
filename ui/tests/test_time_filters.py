"""The thread's time filters (ui_tags.message_time, exact_time) give the text of Django's
``date`` filter with the formats they replace, in any time zone and language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.template import Context, Template
from django.utils import timezone, translation

from ui.templatetags.ui_tags import exact_time, message_time

MOMENTS = [
    datetime(2026, month, day, hour, minute, second, tzinfo=UTC)
    for month, day, hour, minute, second in [
        (1, 1, 0, 0, 0),
        (3, 29, 1, 30, 59),  # a DST change in Europe
        (7, 9, 23, 59, 1),
        (11, 26, 12, 5, 7),
        (12, 31, 23, 59, 59),
    ]
]


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/St_Johns", "Asia/Kolkata"])
@pytest.mark.parametrize("language", ["en", "de"])
def test_the_thread_time_filters_read_as_djangos_date_filter(zone: str, language: str) -> None:
    ours = Template("{% load ui_tags %}{{ moment|message_time }}|{{ moment|exact_time }}")
    djangos = Template("""{{ moment|date:"M j, H:i" }}|{{ moment|date:"Y-m-d H:i:s e" }}""")
    with timezone.override(ZoneInfo(zone)), translation.override(language):
        for moment in MOMENTS + [moment + timedelta(microseconds=1) for moment in MOMENTS]:
            context = Context({"moment": moment})
            assert ours.render(context) == djangos.render(context)


def test_no_time_is_an_empty_string() -> None:
    assert message_time(None) == exact_time(None) == ""
