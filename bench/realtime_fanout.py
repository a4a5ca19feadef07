"""Websocket fan-out benchmark: N sockets subscribed to ``tickets`` in one workspace, M
events published, delivery latency from publish to every socket.

    .venv/bin/python bench/realtime_fanout.py                      # 1000 sockets, 100 events
    .venv/bin/python bench/realtime_fanout.py --sockets 200 --events 50 --rate 20
    REDIS_URL=redis://127.0.0.1:6379/9 .venv/bin/python bench/realtime_fanout.py --servers 2

What runs: real uvicorn processes serving ``enque.asgi:application`` (``--servers``, the
sockets spread round-robin over them), the channel layer of ``CHANNEL_LAYERS`` (printed)
on ``REDIS_URL`` (or a private embedded Redis), a scratch SQLite database under a
temporary ``ENQUE_VAR_DIR`` (migrated first, ~15 s) holding one workspace and agent. The
benchmark process itself is the client: it opens the sockets with the ``websockets``
library, subscribes each to ``tickets``, then publishes events through
``realtime.publish.apublish`` — the code path a service's commit takes — each stamped with
its send time. Latency is receive time minus send time, per (event, socket); the client
shares the machine's CPUs with the servers and Redis, so on a small machine its own
decoding is part of the figure.

Prints: connect time, deliveries, p50 / p90 / p99 / max latency, the publish rate achieved,
and throughput (events fully delivered per second, and frames per second).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=1000, help="sockets (default 1000)")
    parser.add_argument("--events", type=int, default=100, help="events (default 100)")
    parser.add_argument(
        "--rate",
        type=float,
        default=50.0,
        help="events published per second (default 50; 0 = as fast as possible)",
    )
    parser.add_argument("--servers", type=int, default=1, help="uvicorn processes (default 1)")
    parser.add_argument(
        "--connect-concurrency", type=int, default=100, help="handshakes in flight at once"
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=30.0, help="seconds to wait for stragglers"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the scratch directory (server logs)"
    )
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


class Bench:
    def __init__(self, args: argparse.Namespace, var_dir: Path) -> None:
        self.args = args
        self.var_dir = var_dir
        self.servers: list[tuple[subprocess.Popen[bytes], int]] = []
        self.redis: Any = None
        # seq → list of latencies (seconds)
        self.latencies: dict[int, list[float]] = {}
        self.last_delivery = 0.0
        self.frames = 0
        # how a socket was closed during the run → how many
        self.closed: dict[str, int] = {}

    # --- setup ------------------------------------------------------------------------

    def setup(self) -> str:
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        from enque import embedded_redis

        if settings.REDIS_MODE == "memory":
            sys.exit("REDIS_URL=memory cannot carry events between processes; unset it.")
        if settings.REDIS_MODE == "embedded":
            self.redis = embedded_redis.ensure_running(settings.EMBEDDED_REDIS_SOCKET)
        self.redis_url = settings.REDIS_URL
        print(f"redis: {settings.REDIS_MODE} ({settings.REDIS_URL})")
        print(f"channel layer: {settings.CHANNEL_LAYERS['default']['BACKEND']}")
        print(f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}")
        started = time.monotonic()
        call_command("migrate", interactive=False, verbosity=0)
        print(f"migrated in {time.monotonic() - started:.1f} s")
        return self.make_agent()

    def make_agent(self) -> str:
        from enque.api.authentication import issue_tokens
        from workspaces.models import User
        from workspaces.services import workspace_create

        stamp = int(time.time() * 1000)
        user = User.objects.create_user(f"bench-{stamp}@bench.test", name="Bench Agent")
        workspace = workspace_create(name=f"Fan-out bench {stamp}", owner=user)
        self.workspace_id = workspace.pk
        agent = user.agents.get(workspace=workspace)
        return issue_tokens(agent)["access"]

    def start_servers(self) -> None:
        env = {**os.environ, "REDIS_URL": self.redis_url, "LOG_LEVEL": "warning"}
        for i in range(self.args.servers):
            port = free_port()
            log = (self.var_dir / f"server-{i}.log").open("wb")
            process = subprocess.Popen(
                [
                    sys.executable, "-m", "uvicorn", "enque.asgi:application",
                    "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off",
                    "--log-level", "warning", "--no-access-log", "--backlog", "4096",
                ],
                cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            self.servers.append((process, port))
        import urllib.request

        deadline = time.monotonic() + 60
        for process, port in self.servers:
            while True:
                if process.poll() is not None:
                    sys.exit(f"server on :{port} exited; see {self.var_dir}/server-*.log")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        sys.exit(f"server on :{port} did not start")
                    time.sleep(0.1)
        print(f"servers: {len(self.servers)} uvicorn on ports {[p for _, p in self.servers]}")

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time used so far by this process and each server (Linux /proc), to show where
        the time goes: on a small machine the client competes with the servers."""
        ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        usage = {"client": time.process_time()}
        for i, (process, _) in enumerate(self.servers):
            try:
                fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            usage[f"server-{i}"] = (int(fields[11]) + int(fields[12])) / ticks
        return usage

    def stop(self) -> None:
        for process, _ in self.servers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _ in self.servers:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if self.redis is not None:
            self.redis.stop()

    # --- the run ------------------------------------------------------------------------

    async def open_socket(self, index: int, token: str, gate: asyncio.Semaphore) -> Any:
        from websockets.asyncio.client import connect

        port = self.servers[index % len(self.servers)][1]
        async with gate:
            ws = await connect(
                f"ws://127.0.0.1:{port}/realtime?token={token}",
                open_timeout=60,
                max_queue=None,
                compression=None,
            )
            welcome = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "subscribe", "payload": {"channel": "tickets"}}))
            subscribed = json.loads(await ws.recv())
        if (welcome["type"], subscribed["type"]) != ("welcome", "subscribed"):
            raise RuntimeError(f"unexpected handshake: {welcome} {subscribed}")
        return ws

    async def read(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            await self.read_frames(ws)
        except ConnectionClosed as closed:
            how = str(closed)
            self.closed[how] = self.closed.get(how, 0) + 1

    async def read_frames(self, ws: Any) -> None:
        async for text in ws:
            received = time.time()
            frame = json.loads(text)
            if frame.get("type") != "ticket.updated":
                continue
            data = frame["data"]
            self.latencies.setdefault(data["seq"], []).append(received - data["sent"])
            self.frames += 1
            self.last_delivery = received

    async def keep_alive(self, sockets: list[Any]) -> None:
        while True:
            await asyncio.sleep(30)  # the server closes sockets idle for two minutes
            for ws in sockets:
                await ws.send('{"type":"ping"}')

    async def run(self, token: str) -> dict[str, Any]:
        from realtime.publish import apublish
        from tickets.hooks import TicketChange

        args = self.args
        gate = asyncio.Semaphore(args.connect_concurrency)
        started = time.monotonic()
        sockets = await asyncio.gather(
            *(self.open_socket(i, token, gate) for i in range(args.sockets))
        )
        connect_time = time.monotonic() - started
        print(
            f"connected + subscribed {len(sockets)} sockets in {connect_time:.2f} s "
            f"({len(sockets) / connect_time:.0f}/s)"
        )
        readers = [asyncio.create_task(self.read(ws)) for ws in sockets]
        pinger = asyncio.create_task(self.keep_alive(sockets))
        await asyncio.sleep(0.5)

        interval = 1 / args.rate if args.rate > 0 else 0.0
        cpu_before = self.cpu_seconds()
        first_publish = time.time()
        next_at = time.monotonic()
        for seq in range(args.events):
            await apublish(
                TicketChange(
                    type="ticket.updated",
                    workspace_id=self.workspace_id,
                    ticket_id=0,
                    ticket_number=1,
                    actor={"type": "system", "agent": None, "customer": None, "automation": None},
                    data={"seq": seq, "sent": time.time(), "changes": {}},
                )
            )
            if interval:
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        publish_time = time.time() - first_publish

        expected = args.sockets * args.events
        deadline = time.monotonic() + args.drain_timeout
        while self.frames < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        cpu_after = self.cpu_seconds()
        pinger.cancel()
        for task in readers:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        result = self.report(expected, first_publish, publish_time)
        used = {k: cpu_after[k] - cpu_before.get(k, 0.0) for k in cpu_after}
        print("cpu seconds during the run: " + ", ".join(f"{k}={v:.1f}" for k, v in used.items()))
        return {**result, "connect_s": connect_time, "cpu_s": used}

    def report(self, expected: int, first_publish: float, publish_time: float) -> dict[str, Any]:
        args = self.args
        all_latencies = [x for values in self.latencies.values() for x in values]
        complete = sum(1 for values in self.latencies.values() if len(values) == args.sockets)
        elapsed = max(self.last_delivery - first_publish, 1e-9)
        print()
        print(
            f"sockets={args.sockets} events={args.events} servers={args.servers} "
            f"rate={'max' if args.rate <= 0 else args.rate}/s"
        )
        print(
            f"delivered {len(all_latencies)}/{expected} frames "
            f"({expected - len(all_latencies)} lost); "
            f"{complete}/{args.events} events reached every socket"
        )
        if all_latencies:
            ms = [x * 1000 for x in all_latencies]
            print(
                f"latency ms: p50={percentile(ms, 50):.1f} p90={percentile(ms, 90):.1f} "
                f"p99={percentile(ms, 99):.1f} max={max(ms):.1f} mean={statistics.fmean(ms):.1f}"
            )
        if self.closed:
            print(f"sockets closed during the run: {self.closed}")
        print(f"published {args.events} events in {publish_time:.2f} s")
        print(
            f"throughput: {args.events / elapsed:.1f} events/s fully fanned out, "
            f"{len(all_latencies) / elapsed:.0f} frames/s delivered "
            f"(first publish → last delivery {elapsed:.2f} s)"
        )
        ms = sorted(x * 1000 for x in all_latencies) or [float("nan")]
        return {
            "sockets": args.sockets,
            "events": args.events,
            "servers": args.servers,
            "delivered": len(all_latencies),
            "expected": expected,
            "lost": expected - len(all_latencies),
            "complete_events": complete,
            "latency_ms": {
                "median": percentile(ms, 50),
                "p90": percentile(ms, 90),
                "p99": percentile(ms, 99),
                "min": ms[0],
                "max": ms[-1],
            },
            "events_per_s": args.events / elapsed,
            "frames_per_s": len(all_latencies) / elapsed,
        }


def run_benchmark(
    *, sockets: int = 1000, events: int = 100, rate: float = 50.0, servers: int = 1
) -> dict[str, Any]:
    """The benchmark as a function (bench/run.py calls it in a process of its own: it sets
    environment variables and configures Django): the figures as a dict."""
    args = argparse.Namespace(
        sockets=sockets,
        events=events,
        rate=rate,
        servers=servers,
        connect_concurrency=100,
        drain_timeout=30.0,
        keep=False,
    )
    return execute(args)


def main() -> None:
    execute(parse_args())


def execute(args: argparse.Namespace) -> dict[str, Any]:
    var_dir = Path(tempfile.mkdtemp(prefix="enque-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enque.settings")
    os.environ["ENQUE_VAR_DIR"] = str(var_dir)
    os.environ.setdefault("JWT_ACCESS_MINUTES", "240")
    os.environ.pop("DATABASE_URL", None)  # always a scratch database: nothing left behind
    sys.path.insert(0, str(BASE_DIR))
    bench = Bench(args, var_dir)
    try:
        token = bench.setup()
        bench.start_servers()
        return asyncio.run(bench.run(token))
    except BaseException:
        for log in sorted(var_dir.glob("server-*.log")):
            print(f"--- {log.name} (tail) ---\n{log.read_text(errors='replace')[-3000:]}")
        raise
    finally:
        bench.stop()
        if args.keep:
            print(f"kept {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
