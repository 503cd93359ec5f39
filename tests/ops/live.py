"""A real gunicorn (several workers) serving the suite's test database, for tests of what only
a multi-process server shows: metrics added up across workers, PgBouncer in front of the primary."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from django.conf import settings
from django.db import connections

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def database_url(alias: str) -> str:
    """The URL of the database an alias uses now (the test database once pytest-django made it)."""
    s = connections[alias].settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


def app_environment(**overrides: str) -> dict[str, str]:
    """The environment of a server process using the same test database and Redis as this suite."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url("default"),
        "DATABASE_REPLICA_URLS": ",".join(database_url(alias) for alias in settings.REPLICA_ALIASES),
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "DEBUG": "False",
        "PYTHONUNBUFFERED": "1",
    }
    for key in ("DATABASE_POOL_URL", "DATABASE_POOL_LIMIT", "PROMETHEUS_MULTIPROC_DIR", "TEST_DATABASE_NAME"):
        env.pop(key, None)
    env.update(overrides)
    return env


class LiveGunicorn:
    """gunicorn.conf.py as `make run` uses it, on a free loopback port."""

    def __init__(self, workdir: Path, *, workers: int = 3, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.multiproc_dir = workdir / "prometheus"
        self.log_path = workdir / "gunicorn.log"
        # What the launcher does: a fresh, empty multiprocess directory for every start.
        shutil.rmtree(self.multiproc_dir, ignore_errors=True)
        self.multiproc_dir.mkdir(parents=True)
        (workdir / "static").mkdir(exist_ok=True)
        self.env = app_environment(
            PROMETHEUS_MULTIPROC_DIR=str(self.multiproc_dir),
            GUNICORN_BIND=f"127.0.0.1:{self.port}",
            GUNICORN_WORKERS=str(workers),
            GUNICORN_ACCESSLOG="/dev/null",
            # Its own (empty) static root: whitenoise scans it at start, and a collectstatic of
            # `make test` or `make run` rewriting var/static at that moment would break the start.
            STATIC_ROOT=str(workdir / "static"),
            **env,
        )
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "softfactory.wsgi", "-c", "gunicorn.conf.py"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"gunicorn exited:\n{self.log()}"
            if len(self.worker_pids()) == self.workers:
                try:
                    if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                        return
                except requests.RequestException:
                    pass
            time.sleep(0.2)
        raise AssertionError(f"gunicorn did not come up:\n{self.log()}")

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.process.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def wait_for_workers(self, count: int, *, exclude: set[int] = frozenset(), timeout: float = 30) -> list[int]:  # type: ignore[assignment]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = [p for p in self.worker_pids() if p not in exclude]
            if len(pids) >= count:
                return pids
            time.sleep(0.1)
        raise AssertionError(f"gunicorn has not got {count} workers back:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@contextmanager
def live_gunicorn(workdir: Path, *, workers: int = 3, **env: str) -> Iterator[LiveGunicorn]:
    server = LiveGunicorn(workdir, workers=workers, **env)
    server.start()
    try:
        yield server
    finally:
        server.stop()
