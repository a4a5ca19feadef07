"""Analytics benchmark: the reports of ``tickets.reports`` on one big workspace.

    .venv/bin/python bench/analytics.py --size 10000            # bench/datagen.py's dataset
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enque_bench \
        .venv/bin/python bench/analytics.py --size 1000000
    .venv/bin/python bench/analytics.py --workspace acme        # an existing workspace
    .venv/bin/python bench/analytics.py --size 10000 --repeat 9 --days 90

The workspace is ``bench/datagen.py``'s ``bench-<size>`` (generated on first use, reused
after), or ``--workspace <slug>``. The period is the ``--days`` (90) local days ending with
the workspace's newest ticket, so the figures cover real data whatever day the dataset was
generated. Measured, each ``--repeat`` times after one warm-up run, in milliseconds:

- ``overview``: ``reports.overview`` with the default business hours (every headline figure:
  counts, backlog, SLA, replies, percentiles in calendar and business time);
- ``timeseries_created_day`` / ``timeseries_backlog_day`` /
  ``timeseries_first_response_median_day``: a 90-day daily series of a count, of the
  backlog, and of a percentile;
- ``heatmap``, ``agents``, ``teams``: the busiest-hours grid and the two tables.

Each figure is the median / p90 / min / max of the runs, with the query count. Prints a
table; ``run()`` returns the same as a dict (``bench/run.py``'s ``analytics`` section).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent


def setup_django() -> None:
    sys.path.insert(0, str(BASE_DIR))
    sys.path.insert(0, str(BASE_DIR / "bench"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enque.settings")
    if not os.environ.get("DATABASE_URL"):
        # The same SQLite file as bench/datagen.py and bench/run.py use.
        os.environ.setdefault("ENQUE_VAR_DIR", str(BASE_DIR / "var" / "bench"))
    os.environ.setdefault("LOG_LEVEL", "warning")
    import django

    django.setup()


def _workspace(size: int | None, slug: str | None) -> Any:
    from workspaces.models import Workspace

    if slug:
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            raise SystemExit(f"No workspace with the slug {slug!r}.")
        return workspace
    try:
        import datagen  # bench/datagen.py (helper H5's), imported only when needed
    except ImportError:
        raise SystemExit("bench/datagen.py is missing: pass --workspace <slug>.") from None
    datagen.ensure_database()
    return datagen.ensure_dataset(size or 10_000)


def _measure(call: Callable[[], Any], repeat: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    call()  # warm-up: caches, prepared plans, the page cache
    times = []
    queries = 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            call()
            times.append((time.perf_counter() - started) * 1000)
        queries = len(ctx.captured_queries)
    times.sort()
    p90_index = min(len(times) - 1, max(0, round(0.9 * len(times) + 0.5) - 1))
    return {
        "median": round(statistics.median(times), 2),
        "p90": round(times[p90_index], 2),
        "min": round(times[0], 2),
        "max": round(times[-1], 2),
        "queries": queries,
    }


def run(
    size: int | None = 10_000,
    *,
    workspace: str | None = None,
    repeat: int = 5,
    days: int = 90,
) -> dict[str, Any]:
    setup_django()
    from django.db.models import Max

    from tickets import reports
    from tickets.models import Ticket

    ws = _workspace(size, workspace)
    tz = reports.workspace_zone(ws)
    newest = Ticket.objects.for_workspace(ws).aggregate(m=Max("created_at"))["m"]
    if newest is None:
        raise SystemExit(f"The workspace {ws.slug} has no tickets.")
    end = newest.astimezone(tz).date()
    period = reports.Period(start=end - timedelta(days=days - 1), end=end, tz=tz)
    filters = reports.Filters()
    tickets = Ticket.objects.for_workspace(ws).count()

    def series(metric: str) -> Callable[[], Any]:
        return lambda: reports.timeseries(ws, period, filters, metric=metric, interval="day")

    calls: dict[str, Callable[[], Any]] = {
        "overview": lambda: reports.overview(
            ws, period, filters, schedule=reports.report_schedule(ws)
        ),
        f"timeseries_created_day_{days}": series("created"),
        f"timeseries_backlog_day_{days}": series("backlog"),
        f"timeseries_first_response_median_day_{days}": series("first_response_median"),
        "heatmap": lambda: reports.heatmap(ws, period, filters),
        "agents": lambda: reports.agent_table(ws, period, filters),
        "teams": lambda: reports.team_table(ws, period, filters),
    }
    from django.db import connection

    result: dict[str, Any] = {
        "workspace": ws.slug,
        "tickets": tickets,
        "database": connection.vendor,
        "period": f"{period.start}..{period.end} ({tz.key})",
        "repeat": repeat,
    }
    for name, call in calls.items():
        result[name] = _measure(call, repeat)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=10_000, help="datagen size (default 10000)")
    parser.add_argument("--workspace", help="the slug of an existing workspace instead")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per figure")
    parser.add_argument("--days", type=int, default=90, help="period length in days")
    args = parser.parse_args(argv)
    if args.repeat < 1 or not 1 <= args.days <= 366:
        parser.error("--repeat must be at least 1 and --days between 1 and 366")
    result = run(args.size, workspace=args.workspace, repeat=args.repeat, days=args.days)
    print(
        f"{result['tickets']:,} tickets in {result['workspace']} on {result['database']}, "
        f"period {result['period']}, {result['repeat']} runs each"
    )
    print(f"{'report':<44} {'median ms':>10} {'p90 ms':>10} {'min':>9} {'max':>9} {'queries':>8}")
    for name, figures in result.items():
        if isinstance(figures, dict):
            print(
                f"{name:<44} {figures['median']:>10.1f} {figures['p90']:>10.1f} "
                f"{figures['min']:>9.1f} {figures['max']:>9.1f} {figures['queries']:>8}"
            )


if __name__ == "__main__":
    main()
