"""A local stand-in for the social platforms: accepts published posts and counts repeats.

    python bench/webhook.py PORT

`POST /publish` answers 200 with an external id and records the `Idempotency-Key`;
`GET /stats` returns `{"deliveries", "unique_keys", "duplicates"}` (a duplicate is a second
accepted delivery of a key: a post published twice). Loopback only; stops on SIGTERM.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

deliveries: Counter[str] = Counter()
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return

    def _answer(self, status: int, body: dict[str, object]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        key = self.headers.get("Idempotency-Key") or ""
        with lock:
            deliveries[key] += 1
            seen = deliveries[key]
        self._answer(200, {"external_id": f"bench-{key}-{seen}"})

    def do_GET(self) -> None:
        with lock:
            total = sum(deliveries.values())
            unique = len(deliveries)
        self._answer(200, {"deliveries": total, "unique_keys": unique, "duplicates": total - unique})


def main(port: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main(int(sys.argv[1]))
