"""A PRIVATE throwaway stack for fault injection under load; the suite's shared stack is never touched.

`private_stack` starts its own PostgreSQL primary + 2 replicas + Redis under a temporary
directory (`scripts/stack` with SOFTFACTORY_VAR there: its own ports), migrates and seeds it, and
destroys it at the end. Every command that stops or restarts a server goes through
`PrivateStack.ctl`, which refuses to run unless the target's ports are not the shared stack's.
`private_gunicorn` serves the app (4 sync workers) against that stack.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import redis
import requests

from tests.live import free_port
from tests.stack import ROOT, run_stack, stack_state
from tests.workers import child_pids

GUNICORN_WORKERS = 4
NO_CONTROL = ["--no-control-socket"]  # no ~/.gunicorn/gunicorn.ctl shared with other servers
SECRET_KEY = "chaos-private-stack-secret-key-not-for-production-0123456789abcdef"
# Settings of this process's environment that point at the shared stack or another run.
DROPPED_ENV = (
    "DATABASE_URL",
    "DATABASE_REPLICA_URLS",
    "DATABASE_ADMIN_URL",
    "DATABASE_POOL_URL",
    "DATABASE_POOL_LIMIT",
    "REDIS_URL",
    "REDIS_CACHE_URL",
    "REDIS_SESSIONS_URL",
    "CELERY_BROKER_URL",
    "TEST_DATABASE_NAME",
    "PROMETHEUS_MULTIPROC_DIR",
    "SOFTFACTORY_STACK",
    "SOFTFACTORY_PGBOUNCER",
)


@dataclass
class PrivateStack:
    var: Path
    env: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def guard(self) -> None:
        """Never act on the shared stack: the private ports must all differ from its ports."""
        shared = set(stack_state()["ports"].values()) if (ROOT / "var" / "stack.json").exists() else set()
        mine = set(self.ports.values())
        if not mine or mine & shared or self.var.resolve() == (ROOT / "var").resolve():
            raise RuntimeError(f"refusing to touch a stack that is not the private one ({self.var})")

    def ctl(self, name: str, action: str, *, mode: str = "fast") -> None:
        self.guard()
        run_stack("ctl", name, action, "--mode", mode, var=self.var, timeout=120)

    def manage(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            text=True,
            capture_output=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """A query on the private primary's application database (a fresh connection)."""
        conn = psycopg2.connect(self.env["DATABASE_URL"], connect_timeout=5)
        try:
            with conn.cursor() as cursor:
                cursor.execute(query, params)
                return list(cursor.fetchall())
        finally:
            conn.close()

    def redis(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.ports["redis"], db=db, socket_timeout=2)


def _private_env(var: Path) -> tuple[dict[str, str], dict[str, int]]:
    """The environment for processes of the private stack, from `scripts/stack env` (defaults only:
    that output prefers values already in the environment, which here are the shared stack's)."""
    output = run_stack("env", var=var).stdout
    values = dict(re.findall(r'^export (\w+)="\$\{\w+:-(.*)\}"$', output, flags=re.MULTILINE))
    ports = {name: int(port) for name, port in stack_state(var)["ports"].items()}
    env = {
        key: value for key, value in os.environ.items() if key not in DROPPED_ENV and not key.startswith("GUNICORN_")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="softfactory.settings",
        DATABASE_URL=values["DATABASE_URL"],
        DATABASE_REPLICA_URLS=values["DATABASE_REPLICA_URLS"],
        DATABASE_ADMIN_URL=values["DATABASE_ADMIN_URL"],
        REDIS_URL=values["REDIS_URL"],
        SECRET_KEY=SECRET_KEY,
        DEBUG="False",
        # Logins are part of the load; Argon2 would make them the whole load (production keeps Argon2).
        PASSWORD_HASHERS="django.contrib.auth.hashers.MD5PasswordHasher",
        PYTHONUNBUFFERED="1",
    )
    for key in ("DATABASE_URL", "DATABASE_REPLICA_URLS", "REDIS_URL"):
        if any(f":{port}/" in env[key] for port in stack_state()["ports"].values()):
            raise RuntimeError(f"{key} of the private stack names a port of the shared stack: {env[key]}")
    return env, ports


@pytest.fixture(scope="session")
def private_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateStack]:
    """Its own primary, 2 replicas and Redis, migrated and seeded (demo scale); destroyed at the end."""
    var = tmp_path_factory.mktemp("chaos-stack") / "var"
    started = time.monotonic()
    try:
        run_stack("start", var=var, timeout=300)
        env, ports = _private_env(var)
        stack = PrivateStack(var=var, env=env, ports=ports)
        stack.guard()
        stack.manage("migrate", "--noinput", "--verbosity", "0")
        stack.manage("seed", "--scale", "demo", "--tokens-file", str(var.parent / "tokens.txt"))
        print(f"\nchaos: private stack on ports {ports} ready in {time.monotonic() - started:.0f}s")
        yield stack
    finally:
        run_stack("destroy", var=var, check=False, timeout=300)


@dataclass
class PrivateGunicorn:
    stack: PrivateStack
    workdir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, **extra_env: str) -> None:
        self.port = free_port()
        env = {
            **self.stack.env,
            "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / "prometheus"),
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": str(GUNICORN_WORKERS),
            # Sync workers: one request per worker, so "a killed worker costs only its request in
            # flight" is exact (a gthread worker would also drop its other threads' requests).
            "GUNICORN_WORKER_CLASS": "sync",
            "GUNICORN_ACCESSLOG": os.devnull,
            **extra_env,
        }
        log = (self.workdir / "gunicorn.log").open("ab")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "softfactory.wsgi", "-c", "gunicorn.conf.py", *NO_CONTROL],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log()[-4000:]}")
            try:
                if requests.get(f"{self.base_url}/healthz", timeout=1).status_code == 200 and self.workers():
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not start:\n{self.log()[-4000:]}")

    def workers(self) -> list[int]:
        return sorted(child_pids(self.pid)) if self.process is not None else []

    def log(self) -> str:
        path = self.workdir / "gunicorn.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """SIGTERM to this master only (it stops its own workers), SIGKILL if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def metrics(self) -> str:
        return requests.get(f"{self.base_url}/metrics", timeout=10).text

    def readyz(self) -> tuple[int, dict[str, Any]]:
        response = requests.get(f"{self.base_url}/readyz", timeout=10)
        return response.status_code, json.loads(response.content or b"{}")


@pytest.fixture(scope="session")
def private_gunicorn(
    private_stack: PrivateStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrivateGunicorn]:
    server = PrivateGunicorn(private_stack, tmp_path_factory.mktemp("chaos-gunicorn"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        if "Internal Server Error" in server.log():  # a 500 somewhere: show why
            print(f"chaos: gunicorn log (500s found):\n{server.log()[-8000:]}")
