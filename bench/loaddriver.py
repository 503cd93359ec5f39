"""A small, bounded HTTP load driver for fault-injection tests (tests/chaos/) and quick checks.

Threads, each with its own keep-alive `requests.Session`, send a weighted mix of requests at a
steady rate to ONE loopback base URL. Every run is bounded three ways: a duration, a maximum
number of requests and a per-request timeout; it stops by itself. Every request is recorded
(start, end, status, error, Retry-After), so a test can ask what happened in any time window,
e.g. "requests started after the replica was stopped".

Only loopback targets are accepted (127.0.0.0/8, ::1, localhost): this is a test tool for
servers started on this machine, never a load generator for anything else.

    python bench/loaddriver.py http://127.0.0.1:8000 --rate 60 --duration 30 /api/coocook/chefs /healthz
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

MAX_REQUESTS_LIMIT = 100_000
MAX_DURATION_SECONDS = 600.0


def ensure_loopback(base_url: str) -> None:
    """Refuse any target that is not this machine's loopback interface."""
    host = urlsplit(base_url).hostname or ""
    addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)} if host else set()
    if not addresses or not all(ipaddress.ip_address(address.split("%")[0]).is_loopback for address in addresses):
        raise ValueError(f"loaddriver only targets loopback addresses, not {base_url!r}")


@dataclass(frozen=True)
class Call:
    """One kind of request in the mix: `name` for the figures, `expected` statuses count as success."""

    name: str
    method: str
    path: str | Callable[[random.Random], str]
    weight: float = 1.0
    expected: frozenset[int] = frozenset({200})
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    body: Callable[[random.Random], Any] | None = None
    session_key: str | None = None  # calls with the same key share one logged-in session per thread

    def resolve_path(self, rng: random.Random) -> str:
        return self.path(rng) if callable(self.path) else self.path


@dataclass
class Result:
    name: str
    started: float  # time.monotonic()
    ended: float
    status: int | None
    error: str | None
    retry_after: str | None
    ok: bool
    body: bytes = b""

    @property
    def latency(self) -> float:
        return self.ended - self.started


@dataclass
class Summary:
    requests: int
    failures: int
    server_errors: int
    rate: float
    p50: float
    p99: float
    max: float
    by_status: Counter[str]
    failure_reasons: Counter[str]

    def line(self) -> str:
        reasons = ", ".join(f"{reason} x{n}" for reason, n in self.failure_reasons.most_common(6)) or "none"
        return (
            f"{self.requests} requests ({self.rate:.1f}/s), {self.failures} failed, {self.server_errors} 5xx, "
            f"p50 {self.p50 * 1000:.0f} ms, p99 {self.p99 * 1000:.0f} ms, max {self.max * 1000:.0f} ms; "
            f"failures: {reasons}"
        )


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return ordered[index]


def failure_reason(result: Result) -> str:
    if result.error is not None:
        return result.error
    detail = f"{result.status}"
    if result.status == 503:
        detail += " with Retry-After" if result.retry_after else " WITHOUT Retry-After"
    return f"{result.name}: HTTP {detail}"


def summarize(results: Iterable[Result], *, seconds: float | None = None) -> Summary:
    rows = list(results)
    span = seconds or ((max(r.ended for r in rows) - min(r.started for r in rows)) if rows else 0.0)
    failed = [r for r in rows if not r.ok]
    latencies = [r.latency for r in rows]
    return Summary(
        requests=len(rows),
        failures=len(failed),
        server_errors=sum(1 for r in rows if r.status is not None and r.status >= 500),
        rate=len(rows) / span if span else 0.0,
        p50=percentile(latencies, 0.50),
        p99=percentile(latencies, 0.99),
        max=max(latencies, default=0.0),
        by_status=Counter(str(r.status) if r.status is not None else "no answer" for r in rows),
        failure_reasons=Counter(failure_reason(r) for r in failed),
    )


class LoadDriver:
    """Send `calls` (weighted) at `rate` requests per second from `threads` threads, until
    `duration` seconds or `max_requests` requests, whichever comes first; `stop()` ends it early."""

    def __init__(
        self,
        base_url: str,
        calls: Sequence[Call],
        *,
        rate: float,
        duration: float,
        threads: int = 8,
        max_requests: int | None = None,
        timeout: float = 10.0,
        seed: int = 1,
        keep_bodies: Callable[[Call], bool] | None = None,
        session_setup: Callable[[str, requests.Session], requests.Response] | None = None,
    ) -> None:
        ensure_loopback(base_url)
        if not calls:
            raise ValueError("no calls to make")
        if not 0 < rate <= 2000 or not 0 < duration <= MAX_DURATION_SECONDS or not 1 <= threads <= 256:
            raise ValueError("rate, duration or threads out of bounds")
        self.base_url = base_url.rstrip("/")
        self.calls = list(calls)
        self.weights = [call.weight for call in self.calls]
        self.rate = rate
        self.duration = duration
        self.threads = threads
        self.max_requests = min(max_requests or math.ceil(rate * duration), MAX_REQUESTS_LIMIT)
        self.timeout = timeout
        self.seed = seed
        self.keep_bodies = keep_bodies or (lambda call: False)
        self.session_setup = session_setup
        self.results: list[Result] = []
        self._lock = threading.Lock()
        self._issued = 0
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self.started_at = 0.0
        self.ended_at = 0.0

    # --- running ---------------------------------------------------------------------------

    def start(self) -> LoadDriver:
        self.started_at = time.monotonic()
        for index in range(self.threads):
            worker = threading.Thread(target=self._run, args=(index,), name=f"loaddriver-{index}", daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self) -> list[Result]:
        deadline = self.started_at + self.duration + self.timeout + 5
        for worker in self._workers:
            worker.join(max(0.1, deadline - time.monotonic()))
        self._stop.set()
        self.ended_at = time.monotonic()
        return self.results

    def run(self) -> list[Result]:
        return self.start().join()

    def _next_slot(self) -> float | None:
        """The time the next request is due, or None when the run is over."""
        with self._lock:
            if self._stop.is_set() or self._issued >= self.max_requests:
                return None
            slot = self.started_at + self._issued / self.rate
            if slot - self.started_at >= self.duration:
                return None
            self._issued += 1
            return slot

    def _run(self, index: int) -> None:
        rng = random.Random(self.seed * 1000 + index)
        sessions: dict[str | None, requests.Session] = {}
        try:
            while (slot := self._next_slot()) is not None:
                delay = slot - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return
                call = rng.choices(self.calls, weights=self.weights)[0]
                session = sessions.get(call.session_key)
                if session is None:
                    session = requests.Session()
                    needs_setup = call.session_key is not None and self.session_setup is not None
                    if needs_setup and not self._setup(str(call.session_key), session):
                        session.close()
                        continue  # counted as a failed "<key> setup"; the next call tries again
                    sessions[call.session_key] = session
                self._record(self._send(session, call, rng))
        finally:
            for session in sessions.values():
                session.close()

    def _setup(self, key: str, session: requests.Session) -> bool:
        """Prepare a session (log it in, say); recorded as a request named "<key> setup"."""
        assert self.session_setup is not None
        started = time.monotonic()
        try:
            response = self.session_setup(key, session)
        except requests.RequestException as exc:
            self._record(Result(f"{key} setup", started, time.monotonic(), None, type(exc).__name__, None, False))
            return False
        ok = response.ok and bool(session.cookies)
        body = b"" if ok else response.content[:2000]
        retry_after = response.headers.get("Retry-After")
        self._record(
            Result(f"{key} setup", started, time.monotonic(), response.status_code, None, retry_after, ok, body)
        )
        return ok

    def _send(self, session: requests.Session, call: Call, rng: random.Random) -> Result:
        url = self.base_url + call.resolve_path(rng)
        payload = call.body(rng) if call.body is not None else call.json
        headers = dict(call.headers)
        csrf = session.cookies.get("csrftoken") if call.session_key is not None else None
        if csrf:  # a browser session sends its CSRF token with unsafe requests
            headers.setdefault("X-CSRFToken", csrf)
        started = time.monotonic()
        try:
            response = session.request(
                call.method, url, json=payload, headers=headers, timeout=self.timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            return Result(call.name, started, time.monotonic(), None, f"{call.name}: {type(exc).__name__}", None, False)
        ended = time.monotonic()
        ok = response.status_code in call.expected
        body = response.content if (not ok or self.keep_bodies(call)) else b""
        return Result(
            call.name, started, ended, response.status_code, None, response.headers.get("Retry-After"), ok, body[:2000]
        )

    def _record(self, result: Result) -> None:
        with self._lock:
            self.results.append(result)

    # --- questions about a run ----------------------------------------------------------------

    def between(self, start: float, end: float = math.inf) -> list[Result]:
        """Requests that STARTED in [start, end) (monotonic times)."""
        return [r for r in self.results if start <= r.started < end]

    def in_flight_at(self, moment: float) -> list[Result]:
        return [r for r in self.results if r.started <= moment <= r.ended]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base_url")
    parser.add_argument("paths", nargs="+", help="GET paths, sent in equal shares")
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--max-requests", type=int, default=None)
    parser.add_argument("--token", default=None, help="sent as `Authorization: Token <key>`")
    args = parser.parse_args(argv)
    headers = {"Authorization": f"Token {args.token}"} if args.token else {}
    calls = [Call(path, "GET", path, headers=headers) for path in args.paths]
    driver = LoadDriver(
        args.base_url,
        calls,
        rate=args.rate,
        duration=args.duration,
        threads=args.threads,
        max_requests=args.max_requests,
    )
    results = driver.run()
    summary = summarize(results, seconds=driver.ended_at - driver.started_at)
    print(summary.line())
    print("statuses:", dict(summary.by_status))
    return 0 if summary.failures == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
