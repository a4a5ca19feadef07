"""`manage.py serve`: the whole of Enque on one machine, from one command (`make run`).

Starts the embedded Redis (unless REDIS_URL is set), applies migrations, seeds the demo
workspace, then runs the ASGI server (uvicorn), a Celery worker and Celery beat as child
processes whose output is prefixed with their name. One Ctrl-C or SIGTERM stops them all and
the Redis server; if any of them exits on its own, the rest are stopped and serve exits
non-zero.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from enque import child_processes, embedded_redis, queues

# Seconds a child gets to finish after SIGTERM before it is killed. The worker may be in the
# middle of a task; with acks_late an interrupted task is redelivered, so this can stay short.
STOP_TIMEOUT = 10.0
# How long the web server gets to answer /healthz before the banner says it is slow.
READY_TIMEOUT = 30.0


class _Stop(Exception):
    """Raised from the signal handler to abandon start-up (migrate, seed)."""


@dataclass
class _Child:
    name: str
    args: list[str]
    # A line the child prints once it is ready (the web server is asked /healthz instead).
    ready_line: str | None = None
    ready: threading.Event = field(default_factory=threading.Event, repr=False)
    process: subprocess.Popen[Any] | None = None
    reader: threading.Thread | None = field(default=None, repr=False)


class Command(BaseCommand):
    help = (
        "Run Enque on this machine: embedded Redis (unless REDIS_URL is set), migrations, "
        "demo data, the web server, a Celery worker and Celery beat. Ctrl-C stops everything."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--host", default=os.environ.get("HOST", "127.0.0.1"), help="default: $HOST"
        )
        parser.add_argument(
            "--port", type=int, default=int(os.environ.get("PORT", "8000")), help="default: $PORT"
        )

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        self._stopping = threading.Event()
        self._signals = 0
        self._started = False
        # Reentrant: the signal handler prints, and may interrupt the main thread mid-print.
        self._output_lock = threading.RLock()
        self._demo = ""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        redis_server: embedded_redis.EmbeddedRedis | None = None
        children: list[_Child] = []
        try:
            self._check_port_free(host, port)
            if settings.REDIS_MODE == "embedded":
                try:
                    redis_server = embedded_redis.ensure_running(settings.EMBEDDED_REDIS_SOCKET)
                except embedded_redis.EmbeddedRedisError as exc:
                    raise CommandError(str(exc)) from exc
                self._say(
                    "Embedded Redis "
                    + ("started" if redis_server else "already running")
                    + f" on {settings.EMBEDDED_REDIS_SOCKET}"
                )
            call_command("migrate", interactive=False, verbosity=1)
            demo = io.StringIO()
            try:
                call_command("seed_demo", stdout=demo)
            except BaseException:
                self._say(demo.getvalue())  # what it said before failing
                raise
            # Shown in the banner, after the children's start-up output, where it is seen.
            self._demo = demo.getvalue().strip()
            children = self._children(host, port)
            self._start(children)
            self._started = True
            failed = self._supervise(children, host, port)
            if failed is not None:
                raise CommandError(
                    f"{failed.name} exited unexpectedly with code "
                    f"{failed.process.returncode if failed.process else '?'}; stopped the rest.",
                    returncode=1,
                )
        except (_Stop, KeyboardInterrupt):
            self._say("Stopped before start-up finished.")
        finally:
            self._shutdown(children, redis_server)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # --- signals ------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        self._stopping.set()
        if self._signals == 1:
            self._say(f"\n{signal.Signals(signum).name} received: stopping everything...")
        else:
            self._say("Second signal: killing what is left.")
        if not self._started and self._signals == 1:
            # Migrate or seed in progress: unwind now so the finally clause cleans up.
            raise _Stop

    # --- children -----------------------------------------------------------------------

    def _children(self, host: str, port: int) -> list[_Child]:
        python = sys.executable
        if settings.IS_POSTGRES:
            # Prefork: real parallelism for CPU-bound work (MIME parsing) and a crashed task
            # cannot take the worker down with it.
            pool = ["--pool=prefork", "--concurrency=2"]
        else:
            # SQLite: threads, not prefork. Forking after a SQLite connection was opened is
            # unsafe, and SQLite takes one writer at a time anyway (settings queue writers
            # on the busy timeout), so two threads are all the parallelism it can use; unlike
            # `solo`, a long mailbox sync still does not hold up a due scheduled reply.
            pool = ["--pool=threads", "--concurrency=2"]
        web = _Child(
            "web",
            [
                python, "-m", "uvicorn", "enque.asgi:application",
                "--host", host, "--port", str(port),
                # Channels' router does not speak the lifespan protocol.
                "--lifespan", "off",
                "--timeout-graceful-shutdown", "5",
            ],
        )  # fmt: skip
        if settings.REDIS_MODE == "memory":
            # An in-memory broker lives inside one process: a separate worker or beat could
            # never see a task. Tasks run inline (CELERY_TASK_ALWAYS_EAGER) instead.
            self._say(
                "REDIS_URL=memory: no worker and no beat (tasks run inline in the web process; "
                "periodic jobs do not run). Unset REDIS_URL for the embedded Redis."
            )
            return [web]
        return [
            web,
            _Child(
                "worker",
                [
                    python, "-m", "celery", "-A", "enque", "worker", "-l", "info", *pool,
                    "--hostname", "serve@%h",
                    # Every queue (enque/queues.py): one worker does all the work here.
                    "--queues", ",".join(queues.ALL),
                    # One worker on one machine: no peers to synchronise with at start-up.
                    "--without-mingle", "--without-gossip",
                ],
                ready_line=" ready.",  # "serve@host ready."
            ),
            _Child(
                "beat",
                [
                    python, "-m", "celery", "-A", "enque", "beat", "-l", "info",
                    "-S", "django_celery_beat.schedulers:DatabaseScheduler",
                ],
                ready_line="beat: Starting...",
            ),
        ]  # fmt: skip

    def _start(self, children: list[_Child]) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.setdefault("DJANGO_SETTINGS_MODULE", "enque.settings")
        for child in children:
            child.process = child_processes.spawn(
                child.args,
                cwd=settings.BASE_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        # Reader threads only after every fork: spawn() runs code between fork and exec.
        for child in children:
            if child.process is None:
                continue
            child.reader = threading.Thread(
                target=self._relay,
                args=(child, child.process.stdout),
                name=f"serve-{child.name}-output",
                daemon=True,
            )
            child.reader.start()

    def _relay(self, child: _Child, stream: IO[bytes] | None) -> None:
        if stream is None:
            return
        prefix = f"{child.name:<6} | "
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            if child.ready_line and child.ready_line in line:
                child.ready.set()
            with self._output_lock:
                self.stdout.write(prefix + line)
        stream.close()

    def _supervise(self, children: list[_Child], host: str, port: int) -> _Child | None:
        """Wait for a signal or for a child to exit; return the child that exited, if any.

        The banner comes once the web server answers and the worker and beat have said they
        are ready, so that it is the last thing on screen after their start-up noise.
        """
        web_url = f"http://{_connect_host(host)}:{port}"
        web_ready = announced = False
        ready_deadline = time.monotonic() + READY_TIMEOUT
        while not self._stopping.is_set():
            for child in children:
                if child.process is not None and child.process.poll() is not None:
                    return child
            if not announced:
                web_ready = web_ready or _answers(web_url + "/healthz")
                waiting = [c.name for c in children if c.ready_line and not c.ready.is_set()]
                if not web_ready:
                    waiting.insert(0, "web")
                if not waiting:
                    announced = True
                    self._banner(host, port, [c.name for c in children])
                elif time.monotonic() > ready_deadline:
                    announced = True
                    self._say(
                        f"Not ready after {READY_TIMEOUT:.0f} s: {', '.join(waiting)}. "
                        "Still running; see their output above."
                    )
                    if web_ready:
                        self._banner(host, port, [c.name for c in children])
            self._stopping.wait(0.5 if announced else 0.2)
        return None

    def _shutdown(
        self, children: list[_Child], redis_server: embedded_redis.EmbeddedRedis | None
    ) -> None:
        processes = [c.process for c in children if c.process is not None]
        # From here a further Ctrl-C only cuts the grace period short.
        self._started = True
        if processes:
            child_processes.stop(processes, timeout=STOP_TIMEOUT, force=lambda: self._signals > 1)
        for child in children:
            if child.reader is not None:
                child.reader.join(timeout=2)
        # Redis last: the worker and beat may still talk to it while they shut down.
        if redis_server is not None:
            redis_server.stop()
            self._say("Embedded Redis stopped.")
        if processes:
            self._say("All stopped.")

    # --- output -------------------------------------------------------------------------

    def _say(self, message: str) -> None:
        with self._output_lock:
            self.stdout.write(message)

    def _banner(self, host: str, port: int, names: list[str]) -> None:
        running = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
        url = f"http://{_connect_host(host)}:{port}"
        database = settings.DATABASES["default"]
        db = (
            f"PostgreSQL {database.get('HOST') or 'local'}/{database['NAME']}"
            if settings.IS_POSTGRES
            else f"SQLite {database['NAME']}"
        )
        redis = {
            "embedded": f"embedded ({settings.EMBEDDED_REDIS_SOCKET})",
            "external": "REDIS_URL",
            "memory": "none (in-memory fallbacks)",
        }[settings.REDIS_MODE]
        lines = [
            "",
            "=" * 64,
            f"  Enque is running at {url}/",
            f"  admin:   {url}/admin/",
            f"  health:  {url}/healthz   readiness: {url}/readyz",
            f"  database: {db}",
            f"  redis:    {redis}",
            f"  {running} running. Press Ctrl-C once to stop everything.",
        ]
        if self._demo:
            lines += ["", *("  " + line for line in self._demo.splitlines())]
        lines += ["=" * 64, ""]
        self._say("\n".join(lines))

    def _check_port_free(self, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As uvicorn does, so a port in TIME_WAIT after a restart counts as free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise CommandError(
                    f"Cannot listen on {host}:{port} ({exc.strerror}). Is Enque already "
                    "running? Stop it, or choose another port: PORT=8001 make run"
                ) from exc


def _connect_host(host: str) -> str:
    if host in ("0.0.0.0", ""):  # noqa: S104 - comparing, not binding
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own http URL
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
