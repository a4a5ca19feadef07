"""Business time across nights, weekends, holidays, time zones and DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from automation.business_hours import (
    Schedule,
    add_business_seconds,
    business_seconds_between,
    is_open,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
HOUR = 3600


def weekdays(tz: str, opens: str = "09:00", closes: str = "17:00", holidays=()) -> Schedule:
    return Schedule.build(
        tz,
        [(day, time.fromisoformat(opens), time.fromisoformat(closes)) for day in range(5)],
        list(holidays),
    )


def at(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)


# 2026-11-20 is a Friday, 2026-11-23 a Monday.


def test_within_one_day() -> None:
    schedule = weekdays("Europe/Berlin")
    due = add_business_seconds(at(BERLIN, 2026, 11, 23, 10, 0), 2 * HOUR, schedule)
    assert due == at(BERLIN, 2026, 11, 23, 12, 0)


def test_across_the_night() -> None:
    schedule = weekdays("Europe/Berlin")
    # Tuesday 16:00 + 3 hours: 1 hour on Tuesday, 2 on Wednesday morning.
    due = add_business_seconds(at(BERLIN, 2026, 11, 24, 16, 0), 3 * HOUR, schedule)
    assert due == at(BERLIN, 2026, 11, 25, 11, 0)


def test_written_at_night_starts_counting_at_opening() -> None:
    schedule = weekdays("Europe/Berlin")
    due = add_business_seconds(at(BERLIN, 2026, 11, 24, 22, 30), 1 * HOUR, schedule)
    assert due == at(BERLIN, 2026, 11, 25, 10, 0)


def test_across_the_weekend() -> None:
    schedule = weekdays("Europe/Berlin")
    due = add_business_seconds(at(BERLIN, 2026, 11, 20, 16, 0), 2 * HOUR, schedule)
    assert due == at(BERLIN, 2026, 11, 23, 10, 0)


def test_written_on_a_sunday() -> None:
    schedule = weekdays("Europe/Berlin")
    due = add_business_seconds(at(BERLIN, 2026, 11, 22, 12, 0), 30 * 60, schedule)
    assert due == at(BERLIN, 2026, 11, 23, 9, 30)


def test_a_holiday_is_skipped() -> None:
    schedule = weekdays("Europe/Berlin", holidays=[date(2026, 11, 23)])
    due = add_business_seconds(at(BERLIN, 2026, 11, 20, 16, 0), 2 * HOUR, schedule)
    # Friday's last hour, Monday is a holiday, so Tuesday 10:00.
    assert due == at(BERLIN, 2026, 11, 24, 10, 0)


def test_christmas_and_a_long_target() -> None:
    schedule = weekdays(
        "Europe/Berlin", holidays=[date(2026, 12, 24), date(2026, 12, 25), date(2026, 12, 31)]
    )
    # Wednesday 23 Dec 09:00 + 24 business hours (three 8-hour days): 23, 28, 29 Dec.
    due = add_business_seconds(at(BERLIN, 2026, 12, 23, 9, 0), 24 * HOUR, schedule)
    assert due == at(BERLIN, 2026, 12, 29, 17, 0)


def test_the_schedules_time_zone_decides() -> None:
    # The same UTC instant: Friday 22:00 UTC is Friday 17:00 in New York (closing) and
    # Saturday 07:00 in Tokyo.
    start = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)
    new_york = add_business_seconds(start, HOUR, weekdays("America/New_York"))
    tokyo = add_business_seconds(start, HOUR, weekdays("Asia/Tokyo"))
    assert new_york == at(NEW_YORK, 2026, 11, 23, 10, 0)
    assert tokyo == at(TOKYO, 2026, 11, 23, 10, 0)
    assert new_york.astimezone(UTC) == datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    assert tokyo.astimezone(UTC) == datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def test_a_dst_change_counts_real_time() -> None:
    # Berlin springs forward on Sunday 29 March 2026: that day has 23 hours.
    always = Schedule.build("Europe/Berlin", [(d, time(0), time(23, 59)) for d in range(7)])
    start = at(BERLIN, 2026, 3, 28, 12, 0)  # 11:00 UTC
    due = add_business_seconds(start, 24 * HOUR, always)
    assert due.astimezone(UTC) == datetime(2026, 3, 29, 11, 0, tzinfo=UTC)
    assert due.astimezone(BERLIN).hour == 13  # 24 real hours later, on summer time
    assert business_seconds_between(start, due, always) == 24 * HOUR


def test_office_hours_on_both_sides_of_a_dst_change() -> None:
    schedule = weekdays("America/New_York")
    # Friday 6 March 16:00 EST + 2 hours: Monday 9 March 10:00 EDT (clocks moved Sunday).
    due = add_business_seconds(at(NEW_YORK, 2026, 3, 6, 16, 0), 2 * HOUR, schedule)
    assert due.astimezone(UTC) == datetime(2026, 3, 9, 14, 0, tzinfo=UTC)


def test_seconds_between_skip_closed_time() -> None:
    schedule = weekdays("Europe/Berlin", holidays=[date(2026, 11, 23)])
    start = at(BERLIN, 2026, 11, 20, 16, 0)  # Friday
    end = at(BERLIN, 2026, 11, 24, 10, 30)  # Tuesday (Monday a holiday)
    assert business_seconds_between(start, end, schedule) == HOUR + 90 * 60
    assert business_seconds_between(end, start, schedule) == 0


def test_calendar_time_without_a_schedule() -> None:
    start = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)
    assert add_business_seconds(start, 2 * HOUR, None) == datetime(2026, 11, 20, 18, tzinfo=UTC)
    assert business_seconds_between(start, datetime(2026, 11, 21, tzinfo=UTC), None) == 8 * HOUR
    assert is_open(start, None)


def test_is_open() -> None:
    schedule = weekdays("Europe/Berlin", holidays=[date(2026, 11, 24)])
    assert is_open(at(BERLIN, 2026, 11, 23, 9, 0), schedule)
    assert is_open(at(BERLIN, 2026, 11, 23, 16, 59), schedule)
    assert not is_open(at(BERLIN, 2026, 11, 23, 17, 0), schedule)
    assert not is_open(at(BERLIN, 2026, 11, 22, 12, 0), schedule)  # Sunday
    assert not is_open(at(BERLIN, 2026, 11, 24, 12, 0), schedule)  # holiday


def test_split_and_overlapping_slots() -> None:
    schedule = Schedule.build(
        "UTC",
        [
            (0, time(9), time(12)),
            (0, time(13), time(17)),
            (0, time(11), time(12, 30)),  # overlaps the morning: merged into 9-12:30
        ],
    )
    start = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday
    assert business_seconds_between(start, datetime(2026, 11, 23, 18, tzinfo=UTC), schedule) == (
        3.5 * HOUR + 4 * HOUR
    )
    assert add_business_seconds(start, 4 * HOUR, schedule) == datetime(
        2026, 11, 23, 13, 30, tzinfo=UTC
    )


def test_closing_at_2359_means_midnight() -> None:
    schedule = Schedule.build("UTC", [(0, time(20), time(23, 59)), (1, time(0), time(2))])
    start = datetime(2026, 11, 23, 23, 0, tzinfo=UTC)  # Monday 23:00
    assert add_business_seconds(start, 2 * HOUR, schedule) == datetime(
        2026, 11, 24, 1, 0, tzinfo=UTC
    )


def test_a_schedule_without_slots_counts_calendar_time() -> None:
    schedule = Schedule.build("UTC", [])
    start = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert add_business_seconds(start, HOUR, schedule) == datetime(2026, 11, 21, 13, tzinfo=UTC)


@pytest.mark.parametrize("hours", [0, 1, 8, 9, 40, 41])
def test_adding_and_measuring_agree(hours: int) -> None:
    schedule = weekdays("Asia/Tokyo", holidays=[date(2026, 11, 23)])
    start = at(TOKYO, 2026, 11, 20, 15, 17)
    due = add_business_seconds(start, hours * HOUR, schedule)
    assert business_seconds_between(start, due, schedule) == hours * HOUR
