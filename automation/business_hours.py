"""Business time: when a weekly schedule is open, and clock arithmetic inside it.

A ``Schedule`` is a ``BusinessHours`` row compiled to plain values (time zone, the opening
intervals of each weekday, the holidays), so the arithmetic below runs without queries.
``None`` instead of a schedule means calendar time (every second counts), which is what an
SLA policy without business hours measures.

The arithmetic walks the schedule's opening intervals day by day in the schedule's own
zone, turns each into UTC before comparing or subtracting (Python subtracts two datetimes of
the same zone by wall clock, which is wrong across a DST change), and so handles nights,
weekends, holidays, zones and DST transitions alike.

Slot conventions: a slot closing at 23:59 (or later within that minute) runs until midnight,
since ``opens_at < closes_at`` forbids writing 24:00; overlapping slots of a day merge; a
schedule with no slot at all never opens, and is treated as calendar time rather than
letting every due time wander off to infinity.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

# How far ahead the walk looks for opening time before giving up (a schedule closed for
# three years in a row has no meaningful due time).
MAX_DAYS = 3 * 366
END_OF_DAY = time(23, 59)

Interval = tuple[time, time | None]  # None: until midnight


@dataclass(frozen=True)
class Schedule:
    tz: zoneinfo.ZoneInfo
    # weekday (Monday 0) -> sorted, non-overlapping opening intervals in local time
    days: dict[int, tuple[Interval, ...]]
    holidays: frozenset[date]

    @classmethod
    def build(
        cls,
        timezone: str,
        slots: list[tuple[int, time, time]],
        holidays: list[date] | tuple[date, ...] = (),
    ) -> Schedule:
        by_day: dict[int, list[tuple[time, time | None]]] = {}
        for weekday, opens, closes in slots:
            end: time | None = None if closes >= END_OF_DAY else closes
            by_day.setdefault(weekday, []).append((opens, end))
        days = {day: _merge(intervals) for day, intervals in by_day.items()}
        return cls(tz=zoneinfo.ZoneInfo(timezone), days=days, holidays=frozenset(holidays))

    @classmethod
    def from_model(cls, hours: object) -> Schedule:
        """From a ``BusinessHours`` whose ``slots`` and ``holidays`` are prefetched."""
        return cls.build(
            hours.timezone,  # type: ignore[attr-defined]
            [(s.weekday, s.opens_at, s.closes_at) for s in hours.slots.all()],  # type: ignore[attr-defined]
            [h.date for h in hours.holidays.all()],  # type: ignore[attr-defined]
        )

    @property
    def never_opens(self) -> bool:
        return not any(self.days.values())

    def intervals_from(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The opening intervals (UTC) that end after ``start``, in order; the first one
        is cut to begin at ``start`` if it is already open."""
        start = start.astimezone(UTC)
        # The day before too: a local day can begin before ``start`` in UTC terms.
        day = start.astimezone(self.tz).date() - timedelta(days=1)
        for offset in range(MAX_DAYS):
            current = day + timedelta(days=offset)
            if current in self.holidays:
                continue
            for opens, closes in self.days.get(current.weekday(), ()):
                begin = datetime.combine(current, opens, tzinfo=self.tz).astimezone(UTC)
                if closes is None:
                    end_local = datetime.combine(
                        current + timedelta(days=1), time(0), tzinfo=self.tz
                    )
                else:
                    end_local = datetime.combine(current, closes, tzinfo=self.tz)
                end = end_local.astimezone(UTC)
                if end <= start:
                    continue
                yield max(begin, start), end


def _merge(intervals: list[tuple[time, time | None]]) -> tuple[Interval, ...]:
    merged: list[tuple[time, time | None]] = []
    for opens, closes in sorted(intervals, key=lambda i: i[0]):
        if merged:
            last_open, last_close = merged[-1]
            if last_close is None or opens <= last_close:
                if last_close is not None and (closes is None or closes > last_close):
                    merged[-1] = (last_open, closes)
                continue
        merged.append((opens, closes))
    return tuple(merged)


def add_business_seconds(start: datetime, seconds: float, schedule: Schedule | None) -> datetime:
    """The moment ``seconds`` of open time after ``start``.

    With zero seconds that is ``start`` itself when open, else the next opening.
    """
    if schedule is None or schedule.never_opens:
        return start + timedelta(seconds=seconds)
    remaining = max(0.0, float(seconds))
    for begin, end in schedule.intervals_from(start):
        available = (end - begin).total_seconds()
        if remaining <= available:
            return begin + timedelta(seconds=remaining)
        remaining -= available
    raise ValueError("The schedule does not open within the next three years.")


def business_seconds_between(start: datetime, end: datetime, schedule: Schedule | None) -> int:
    """Open time between ``start`` and ``end`` (0 when ``end`` is not after ``start``)."""
    if end <= start:
        return 0
    if schedule is None or schedule.never_opens:
        return int((end - start).total_seconds())
    end = end.astimezone(UTC)
    total = 0.0
    for begin, close in schedule.intervals_from(start):
        if begin >= end:
            break
        total += (min(close, end) - begin).total_seconds()
    return int(total)


def is_open(at: datetime, schedule: Schedule | None) -> bool:
    if schedule is None or schedule.never_opens:
        return True
    for begin, _end in schedule.intervals_from(at):
        return begin <= at.astimezone(UTC)
    return False
