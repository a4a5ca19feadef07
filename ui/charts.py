"""Server-rendered SVG charts for the dashboard: no JavaScript, no inline style (the CSP
allows neither), only SVG presentation attributes and CSS classes from app.css.

Every chart is decorative next to its data table (the template puts both in one <figure>),
so the SVG is ``aria-hidden`` and a screen reader reads the table instead; the numbers are
also in ``<title>`` elements, shown as tooltips on hover.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 720, 220
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 48, 12, 12, 28


def format_duration(seconds: float | None) -> str:
    """2 d 4 h, 3 h 20 min, 12 min, 40 s; an em dash for no value."""
    if seconds is None:
        return "—"
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 5 x 10^n)."""
    if value <= 0:
        return 1
    magnitude = 1.0
    while magnitude * 10 <= value:
        magnitude *= 10
    while magnitude > value:
        magnitude /= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def bucket_label(bucket: date, interval: str) -> str:
    if interval == "month":
        return bucket.strftime("%b %Y")
    return bucket.strftime("%b %-d")


def bar_chart(
    points: Sequence[dict[str, Any]],
    *,
    interval: str,
    is_duration: bool,
    label: str,
) -> SafeString:
    """Bars (one per bucket) with a y axis of three ticks and some x labels."""
    values = [p["value"] for p in points]
    top = _nice_max(max([v for v in values if v is not None] or [0]))
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    slot = plot_w / max(len(points), 1)
    bar_w = max(slot * 0.7, 1.0)
    shown = format_duration if is_duration else _format_count

    def y(value: float) -> float:
        return PAD_TOP + plot_h - plot_h * value / top

    ticks = format_html_join(
        "",
        '<g class="chart-tick"><line x1="{}" x2="{}" y1="{}" y2="{}"></line>'
        '<text x="{}" y="{}" text-anchor="end">{}</text></g>',
        (
            (
                PAD_LEFT,
                WIDTH - PAD_RIGHT,
                f"{y(t):.1f}",
                f"{y(t):.1f}",
                PAD_LEFT - 6,
                f"{y(t) + 4:.1f}",
                shown(t),
            )
            for t in (0, top / 2, top)
        ),
    )
    every = max(1, round(len(points) / 8))
    bars = []
    for index, point in enumerate(points):
        value = point["value"]
        x = PAD_LEFT + slot * index + (slot - bar_w) / 2
        text = f"{bucket_label(point['bucket'], interval)}: {shown(value)}"
        if value:
            bars.append(
                format_html(
                    '<rect class="chart-bar" x="{}" y="{}" width="{}" height="{}">'
                    "<title>{}</title></rect>",
                    f"{x:.1f}",
                    f"{y(value):.1f}",
                    f"{bar_w:.1f}",
                    f"{PAD_TOP + plot_h - y(value):.1f}",
                    text,
                )
            )
        if index % every == 0:
            bars.append(
                format_html(
                    '<text class="chart-x" x="{}" y="{}" text-anchor="middle">{}</text>',
                    f"{x + bar_w / 2:.1f}",
                    HEIGHT - 8,
                    bucket_label(point["bucket"], interval),
                )
            )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-hidden="true" '
        'focusable="false" data-chart="{}">{}{}</svg>',
        WIDTH,
        HEIGHT,
        label,
        ticks,
        mark_safe("".join(bars)),  # noqa: S308 - each piece built by format_html above
    )


def _format_count(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:g}" if isinstance(value, float) else str(value)


def heatmap_chart(cells: list[list[int]], weekdays: Sequence[str]) -> SafeString:
    """7 x 24 squares, darker for more tickets; the count in each square's title."""
    cell, gap, left, top = 24, 2, 40, 18
    peak = max(max(row) for row in cells) or 1
    parts = [
        format_html(
            '<text class="chart-x" x="{}" y="{}" text-anchor="middle">{}</text>',
            left + hour * (cell + gap) + cell / 2,
            12,
            f"{hour:02d}",
        )
        for hour in range(0, 24, 3)
    ]
    for day, row in enumerate(cells):
        y = top + day * (cell + gap)
        parts.append(
            format_html(
                '<text class="chart-x" x="{}" y="{}" text-anchor="end">{}</text>',
                left - 6,
                y + cell / 2 + 4,
                weekdays[day][:3],
            )
        )
        for hour, count in enumerate(row):
            # The opacity attribute is SVG presentation, not CSS: allowed by the CSP.
            parts.append(
                format_html(
                    '<rect class="heat-cell{}" x="{}" y="{}" width="{}" height="{}" rx="3" '
                    'fill-opacity="{}"><title>{} {}:00: {}</title></rect>',
                    " heat-empty" if not count else "",
                    left + hour * (cell + gap),
                    y,
                    cell,
                    cell,
                    f"{0.15 + 0.85 * count / peak:.2f}" if count else "1",
                    weekdays[day],
                    f"{hour:02d}",
                    count,
                )
            )
    width = left + 24 * (cell + gap)
    height = top + 7 * (cell + gap)
    return format_html(
        '<svg class="chart heatmap" viewBox="0 0 {} {}" role="img" aria-hidden="true" '
        'focusable="false" data-chart="heatmap">{}</svg>',
        width,
        height,
        mark_safe("".join(parts)),  # noqa: S308 - each piece built by format_html above
    )
