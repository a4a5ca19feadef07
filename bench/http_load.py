"""A small HTTP load generator: N clients on keep-alive connections for a fixed time.

    .venv/bin/python bench/http_load.py --url http://127.0.0.1:8000 --token JWT \
        --mix "GET /v1/tickets=7,GET /v1/tickets/12=2,POST /v1/tickets/12/reply=1" \
        --clients 8 --duration 15

Runs in its own process (the benchmark starts it beside the server, so the server's CPU
time is not the client's): one thread per client, each with one persistent
``http.client`` connection sending requests back to back, the next request drawn from the
weighted mix. Prints one JSON object: requests, errors (by status), requests/s, and
latency median / p90 / p99 / min / max in milliseconds, overall and per request kind.
POST bodies are a short JSON reply.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import threading
import time
from typing import Any
from urllib.parse import urlsplit

REPLY_BODY = json.dumps({"body": "Thanks, we are looking into it.", "internal": True}).encode()


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def summary(latencies: list[float]) -> dict[str, float]:
    if not latencies:
        return {}
    ms = [x * 1000 for x in latencies]
    return {
        "median": percentile(ms, 50),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "min": min(ms),
        "max": max(ms),
    }


def parse_mix(text: str) -> list[tuple[str, str, int]]:
    """ "GET /a=7,POST /b=1" → [("GET", "/a", 7), ("POST", "/b", 1)]."""
    mix = []
    for part in text.split(","):
        request, _, weight = part.strip().rpartition("=")
        method, _, path = request.partition(" ")
        if method not in ("GET", "POST") or not path.startswith("/") or not weight.isdigit():
            raise SystemExit(f"bad mix entry {part!r}: expected 'GET /path=weight'")
        mix.append((method, path, int(weight)))
    return mix


def client(
    host: str,
    port: int,
    token: str,
    mix: list[tuple[str, str, int]],
    deadline: float,
    seed: int,
    out: dict[str, Any],
    lock: threading.Lock,
) -> None:
    rng = random.Random(seed)  # noqa: S311 - request mix, not secrets
    choices = [(m, p) for m, p, _ in mix]
    weights = [w for _, _, w in mix]
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    conn = http.client.HTTPConnection(host, port, timeout=30)
    latencies: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    while time.monotonic() < deadline:
        method, path = rng.choices(choices, weights)[0]
        body = REPLY_BODY if method == "POST" else None
        send_headers = {**headers, "Content-Type": "application/json"} if body else headers
        started = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=send_headers)
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            status = type(exc).__name__
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=30)
        elapsed = time.perf_counter() - started
        key = f"{method} {path}"
        if isinstance(status, int) and status < 400:
            latencies.setdefault(key, []).append(elapsed)
        else:
            errors[str(status)] = errors.get(str(status), 0) + 1
    conn.close()
    with lock:
        for key, values in latencies.items():
            out["latencies"].setdefault(key, []).extend(values)
        for key, count in errors.items():
            out["errors"][key] = out["errors"].get(key, 0) + count


def run(url: str, token: str, mix: str, clients: int = 8, duration: float = 15.0) -> dict[str, Any]:
    parts = urlsplit(url)
    requests = parse_mix(mix)
    out: dict[str, Any] = {"latencies": {}, "errors": {}}
    lock = threading.Lock()
    started = time.monotonic()
    deadline = started + duration
    threads = [
        threading.Thread(
            target=client,
            args=(parts.hostname, parts.port or 80, token, requests, deadline, i, out, lock),
        )
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    every = [x for values in out["latencies"].values() for x in values]
    return {
        "clients": clients,
        "duration_s": round(elapsed, 2),
        "requests": len(every),
        "errors": out["errors"],
        "requests_per_s": len(every) / elapsed,
        "latency_ms": summary(every),
        "by_request": {key: summary(values) for key, values in out["latencies"].items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000")
    parser.add_argument("--token", required=True, help="a JWT access token")
    parser.add_argument("--mix", required=True, help="'GET /path=weight,POST /path=weight'")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds")
    args = parser.parse_args()
    print(json.dumps(run(args.url, args.token, args.mix, args.clients, args.duration)))


if __name__ == "__main__":
    main()
