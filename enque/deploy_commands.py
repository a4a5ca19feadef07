"""The commands that run Enque in production, in one place.

``docker-compose.yml`` and the ``Dockerfile`` spell these out literally (so they read on
their own), ``enque/tests/test_deploy_files.py`` checks that they say exactly this, and the
production smoke test (``enque/tests/test_production_smoke.py``) starts exactly these
processes — so what CI proves is what the containers run.

Shutdown is graceful everywhere (README "Deploy"):

- web: on SIGTERM uvicorn stops accepting, lets in-flight requests finish for up to
  ``WEB_GRACEFUL_SHUTDOWN_SECONDS``, closes websockets with 1012 (clients reconnect to
  another process) and exits 0; the container's stop grace period is longer than that.
- worker: SIGTERM is Celery's warm shutdown: no new tasks, running ones finish, exit 0.
  Tasks are acknowledged late (``CELERY_TASK_ACKS_LATE``), so a worker killed anyway
  (SIGKILL after the grace period, a lost machine) has its task delivered again.
- beat: SIGTERM stops it at once; it holds no work, only the clock.

Imports nothing from Django: the tests read it without settings.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from enque import queues

# The ASGI server's processes per container (each one an event loop with its own DB
# connections); scale further with more containers.
WEB_WORKERS = 2
# Seconds uvicorn waits for in-flight requests after SIGTERM. docker-compose.yml gives the
# container 30 s before SIGKILL, so the wait always ends on uvicorn's terms.
WEB_GRACEFUL_SHUTDOWN_SECONDS = 20
# Worker processes (prefork) per worker container.
WORKER_CONCURRENCY = 2


def web(*, host: str = "0.0.0.0", port: int = 8000, workers: int = WEB_WORKERS) -> list[str]:  # noqa: S104 - a container listens on all its interfaces
    return [
        "uvicorn", "enque.asgi:application",
        "--host", host,
        "--port", str(port),
        "--workers", str(workers),
        # Channels' router does not speak the lifespan protocol.
        "--lifespan", "off",
        "--timeout-graceful-shutdown", str(WEB_GRACEFUL_SHUTDOWN_SECONDS),
        # Enque logs each request itself (enque.access: request id, workspace, agent,
        # duration); uvicorn's access line would repeat it without those.
        "--no-access-log",
    ]  # fmt: skip


def worker(
    *, queue_names: Sequence[str] = queues.ALL, concurrency: int = WORKER_CONCURRENCY
) -> list[str]:
    return [
        "celery", "--app", "enque", "worker",
        # Without --queues a worker consumes "default" only (enque/queues.py).
        "--queues", ",".join(queue_names),
        "--concurrency", str(concurrency),
        # Workers do not talk to each other: no start-up sync of revoked ids, no gossip
        # (less Redis traffic, faster start). Remote control (inspect ping) still works.
        "--without-mingle", "--without-gossip",
    ]  # fmt: skip


def beat() -> list[str]:
    return [
        "celery", "--app", "enque", "beat",
        "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
    ]  # fmt: skip


def migrate() -> list[str]:
    return ["python", "manage.py", "migrate", "--noinput"]


def with_python(argv: Sequence[str], python: str = sys.executable) -> list[str]:
    """The same command run by a given interpreter (``python -m uvicorn ...``), for a
    virtualenv whose scripts are not on PATH (the smoke test)."""
    program, *rest = argv
    if program == "python":
        return [python, *rest]
    return [python, "-m", program, *rest]
