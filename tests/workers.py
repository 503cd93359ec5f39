"""Real `celery worker` and `celery beat` processes for tests (docs/SCHEDULING.md, "Testing").

They run `celery -A softfactory` in their own session (process group), with the environment of
this test run pointed at the *test* database (primary and replicas) and this suite's broker
database, and they are stopped by their own process ids only — never by name — so processes of
other suites sharing the machine and the stack are never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from amqp.exceptions import ChannelError
from django.conf import settings
from django.db import connections

from softfactory.celery import app as celery_app

ROOT = Path(__file__).resolve().parent.parent
ALL_QUEUES = "dispatch,publish,notifications,default"
# Settings of the environment that must not leak into test processes (they would point the
# process at the development database, another suite's metrics directory, ...).
DROPPED_ENV = ("DATABASE_POOL_URL", "PROMETHEUS_MULTIPROC_DIR", "TEST_DATABASE_NAME")


def database_url(settings_dict: dict[str, Any]) -> str:
    user = quote(settings_dict.get("USER") or "", safe="")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    return f"postgres://{auth}{settings_dict['HOST']}:{settings_dict['PORT']}/{quote(settings_dict['NAME'], safe='')}"


def process_env(**overrides: str) -> dict[str, str]:
    """The environment of a worker or beat: this run's settings, on the test database."""
    env = {key: value for key, value in os.environ.items() if key not in DROPPED_ENV}
    env.update(
        DJANGO_SETTINGS_MODULE="softfactory.settings",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        SECRET_KEY=settings.SECRET_KEY,
        DATABASE_URL=database_url(connections["default"].settings_dict),
        DATABASE_REPLICA_URLS=",".join(
            database_url(connections[alias].settings_dict) for alias in settings.REPLICA_ALIASES
        ),
        REDIS_URL=settings.REDIS_CACHE_URL,
        REDIS_SESSIONS_URL=settings.REDIS_SESSIONS_URL,
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        DATABASE_POOL_DISABLED="True",
        LOG_LEVEL="INFO",
    )
    env.update(overrides)
    return env


def flush_broker() -> None:
    """Empty this suite's broker database (its own Redis database number, nobody else's)."""
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


def queue_length(queue: str) -> int:
    """Messages waiting in a queue of this suite's broker (0 for a queue never used)."""
    with celery_app.connection_for_write() as connection:
        try:
            return int(connection.default_channel.queue_declare(queue=queue, passive=True).message_count)
        except ChannelError:
            return 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _reset_broker_connections() -> None:
    celery_app._pool = None  # type: ignore[attr-defined]
    with contextlib.suppress(AttributeError, KeyError):
        celery_app.__dict__["amqp"]._producer_pool = None


@contextlib.contextmanager
def broker_unreachable() -> Iterator[str]:
    """In this process, send Celery messages to a port nobody listens on (the stack's Redis runs on)."""
    # The write URL: Celery prefers the CELERY_BROKER_URL environment variable to broker_url.
    saved = celery_app.conf.get("broker_write_url")
    closed = f"redis://127.0.0.1:{free_port()}/0"
    celery_app.conf.broker_write_url = closed
    _reset_broker_connections()
    try:
        yield closed
    finally:
        celery_app.conf.broker_write_url = saved
        _reset_broker_connections()


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid` (from /proc)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may contain spaces, so split after the last ")".
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            children.append(int(entry.name))
    return children


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@dataclass
class CeleryProcess:
    """One `celery` process this test started; knows its pid, its pool children and its log."""

    kind: str
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    known_children: set[int] = field(default_factory=set)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def children(self) -> list[int]:
        found = child_pids(self.pid)
        self.known_children.update(found)
        return found

    def wait_for_log(self, text: str, *, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.kind} {self.name} exited ({self.popen.returncode}):\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.kind} {self.name} never logged {text!r}:\n{self.log()[-4000:]}")
            time.sleep(0.1)

    def kill(self) -> list[int]:
        """kill -9 this process and its pool children at once; returns the pids killed.

        They are the process group this test created for it (start_new_session: group id = its
        pid), so one killpg hits exactly them, at the same instant.
        """
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)
        return [*sorted(self.known_children), self.pid]

    def stop(self, *, timeout: float = 20.0) -> None:
        """SIGTERM (warm shutdown: running tasks finish), then SIGKILL whatever of ours is left."""
        self.children()
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        for pid in self.known_children:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


class CeleryProcesses:
    """Starts workers and beats for one test and stops exactly those at its end."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[CeleryProcess] = []
        self.env: dict[str, str] = {}

    def _start(self, kind: str, name: str, args: list[str], env: dict[str, str] | None) -> CeleryProcess:
        log_path = self.directory / f"{kind}-{name}.log"
        log = log_path.open("ab")
        command = [sys.executable, "-m", "celery", "-A", "softfactory", *args]
        popen = subprocess.Popen(
            command,
            cwd=ROOT,
            env=process_env(**{**self.env, **(env or {})}),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a Ctrl-C of pytest doesn't hit it midway
        )
        log.close()
        process = CeleryProcess(kind, name, popen, log_path)
        self.started.append(process)
        return process

    def worker(
        self,
        name: str = "worker",
        *,
        queues: str = ALL_QUEUES,
        concurrency: int = 2,
        include: str = "",
        env: dict[str, str] | None = None,
        wait: bool = True,
    ) -> CeleryProcess:
        args = [
            "worker",
            "-n",
            f"{name}-{uuid.uuid4().hex[:8]}@%h",
            "-Q",
            queues,
            "-c",
            str(concurrency),
            "-P",
            "prefork",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "INFO",
        ]
        if include:
            args += ["-I", include]
        process = self._start("worker", name, args, env)
        if wait:
            process.wait_for_log(" ready.")
        return process

    def beat(self, name: str = "beat", *, env: dict[str, str] | None = None, wait: bool = True) -> CeleryProcess:
        args = [
            "beat",
            "-S",
            "django_celery_beat.schedulers:DatabaseScheduler",
            "--pidfile",
            str(self.directory / f"beat-{name}.pid"),
            "-s",
            str(self.directory / f"beat-{name}.schedule"),
            "-l",
            "INFO",
        ]
        process = self._start("beat", name, args, env)
        if wait:
            process.wait_for_log("Sending due task")
        return process

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop()


@pytest.fixture
def celery_processes(transactional_db: None, tmp_path: Path) -> Iterator[CeleryProcesses]:
    """Start real Celery processes on the test database; all stopped (by pid) before the flush."""
    flush_broker()
    processes = CeleryProcesses(tmp_path)
    try:
        yield processes
    finally:
        processes.stop_all()
        flush_broker()


def wait_until(condition: Callable[[], Any], *, timeout: float, interval: float = 0.1, message: str = "") -> Any:
    """Poll until `condition()` is truthy; return its value, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message or f"condition not met within {timeout} s")
        time.sleep(interval)
