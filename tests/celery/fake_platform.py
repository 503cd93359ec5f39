"""A local social-media platform for tests: the webhook publisher's far end, on 127.0.0.1.

It behaves like a real idempotent API: the first request with an `Idempotency-Key` is processed
and its successful answer stored; any later request with that key gets the stored answer and
publishes nothing (a concurrent one waits for the first to finish). Failures it injects (503)
are not stored, so a retry is processed afresh. It records every call, and notices when the
client hung up before the answer (the caller was killed mid-call). It speaks HTTP/1.1 with
keep-alive, counts the TCP connections it accepted, and can close idle ones after `idle_timeout`
(with a reset instead of a clean close when `reset_idle`).
"""

from __future__ import annotations

import contextlib
import json
import random
import select
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Call:
    key: str
    post_id: int | None
    received_at: float
    client_port: int
    outcome: str = "running"  # accepted | replayed | failed | running
    answered_at: float | None = None
    abandoned: bool = False  # the client was gone when the answer was ready


class FakePlatform:
    """Records calls; `fail_first` failures per key, then a `fail_rate` of random failures."""

    def __init__(
        self,
        *,
        delay: tuple[float, float] = (0.0, 0.0),
        fail_rate: float = 0.0,
        fail_first: int = 0,
        fail_status: int = 503,
        always_fail_status: int | None = None,
        status_by_post: dict[int, int] | None = None,
        idle_timeout: float | None = None,
        reset_idle: bool = False,
        seed: int = 7,
    ) -> None:
        self.delay = delay
        self.fail_rate = fail_rate
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.always_fail_status = always_fail_status
        self.status_by_post = status_by_post or {}  # post id -> the error status it always gets
        self.idle_timeout = idle_timeout
        self.reset_idle = reset_idle
        self.connections = 0  # TCP connections accepted
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.key_locks: dict[str, threading.Lock] = {}
        self.calls: list[Call] = []
        self.failures: Counter[str] = Counter()
        self.stored: dict[str, dict[str, Any]] = {}  # key -> the stored 2xx answer
        self.accepted: list[tuple[str, float]] = []  # (key, time) of every publication
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.server.request_queue_size = 256
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/posts"

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> FakePlatform:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def running_calls(self) -> list[Call]:
        with self.lock:
            return [call for call in self.calls if call.outcome == "running"]

    def published_keys(self) -> Counter[str]:
        with self.lock:
            return Counter(key for key, _ in self.accepted)

    def _decide_failure(self, key: str, post_id: Any) -> int | None:
        if post_id in self.status_by_post:
            return self.status_by_post[post_id]
        if self.always_fail_status is not None:
            return self.always_fail_status
        if self.failures[key] < self.fail_first:
            return self.fail_status
        if self.fail_rate and self.random.random() < self.fail_rate:
            return self.fail_status
        return None

    def _handle(self, key: str, body: dict[str, Any], call: Call) -> tuple[int, Any]:
        with self.lock:
            key_lock = self.key_locks.setdefault(key, threading.Lock())
        with key_lock:  # requests with the same key run one after the other
            with self.lock:
                stored = self.stored.get(key)
                failure = None if stored is not None else self._decide_failure(key, body.get("id"))
                if failure is not None:
                    self.failures[key] += 1
            if stored is not None:
                call.outcome = "replayed"
                return 200, stored
            low, high = self.delay
            time.sleep(self.random.uniform(low, high) if high else 0)
            if failure is not None:
                call.outcome = "failed"
                return failure, {"detail": "try again later"}
            with self.lock:
                answer = {"id": f"ext-{len(self.stored) + 1}", "post": body.get("id")}
                self.stored[key] = answer
                self.accepted.append((key, time.time()))
            call.outcome = "accepted"
            return 201, answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        platform = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real APIs
            timeout = platform.idle_timeout  # an idle connection is closed after this

            def setup(self) -> None:
                super().setup()
                with platform.lock:
                    platform.connections += 1

            def handle(self) -> None:
                # A client killed (or reset) between two requests of a keep-alive connection.
                with contextlib.suppress(ConnectionError):
                    super().handle()

            def finish(self) -> None:
                if platform.reset_idle:
                    # SO_LINGER 0: close() sends a reset instead of a clean FIN.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                super().finish()

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def client_gone(self) -> bool:
                readable, _, _ = select.select([self.connection], [], [], 0)
                if not readable:
                    return False
                try:
                    return self.connection.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    return True

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                key = self.headers.get("Idempotency-Key") or ""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                call = Call(
                    key=key,
                    post_id=body.get("id"),
                    received_at=time.time(),
                    client_port=int(self.client_address[1]),
                )
                with platform.lock:
                    platform.calls.append(call)
                if not key:
                    status, answer = 400, {"detail": "Idempotency-Key is required"}
                    call.outcome = "failed"
                else:
                    status, answer = platform._handle(key, body, call)
                call.abandoned = self.client_gone()
                call.answered_at = time.time()
                payload = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    call.abandoned = True

        return Handler


def pids_calling(platform: FakePlatform, pids: list[int]) -> dict[int, list[Call]]:
    """Which of `pids` are in the middle of a call to the platform right now (via /proc sockets)."""
    running = platform.running_calls()
    by_port = {call.client_port: call for call in running}
    # local port -> socket inode, for connections to the platform's port
    inodes: dict[str, Call] = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        remote_port = int(fields[2].split(":")[1], 16)
        if remote_port == platform.port and local_port in by_port:
            inodes[fields[9]] = by_port[local_port]
    calling: dict[int, list[Call]] = {}
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = fd.readlink().name
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                calling.setdefault(pid, []).append(inodes[target[8:-1]])
    return calling
