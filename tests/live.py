"""A real gunicorn serving the pytest test database, for tests that need real HTTP concurrency.

Use the `live_gunicorn` fixture (module-scoped; it yields the base URL) from tests marked
`@pytest.mark.django_db(transaction=True, databases="__all__")`, so the rows a test writes are
committed where the server's workers can read them. Import it into a test module or conftest:
`from tests.live import live_gunicorn  # noqa: F401`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from django.conf import settings
from django.db import connections

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 4
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url(alias: str) -> str:
    """A DATABASE_URL for what `alias` is connected to now: the test database, after setup."""
    config = connections[alias].settings_dict
    user = quote(config.get("USER") or "", safe="")
    password = quote(str(config.get("PASSWORD") or ""), safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = quote(config.get("HOST") or "127.0.0.1", safe="")  # a socket directory becomes %2F...
    port = f":{config['PORT']}" if config.get("PORT") else ""
    return f"postgres://{credentials}{host}{port}/{quote(config['NAME'], safe='')}"


def server_environment(port: int, workdir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GUNICORN_")}
    env.update(
        # Its own metrics directory: another server's sample files must not be added to its own.
        PROMETHEUS_MULTIPROC_DIR=str(workdir / "prometheus"),
        DJANGO_SETTINGS_MODULE="softfactory.settings",
        DATABASE_URL=database_url("default"),
        DATABASE_REPLICA_URLS=",".join(database_url(alias) for alias in settings.REPLICA_ALIASES),
        REDIS_URL=settings.REDIS_URL,
        PASSWORD_HASHERS="django.contrib.auth.hashers.MD5PasswordHasher",
        SECRET_KEY="live-gunicorn-test-secret-key-not-for-production-0123456789",
        DEBUG="False",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS=str(WORKERS),
        # gunicorn.conf.py passes an empty GUNICORN_ACCESSLOG on as a file name (gunicorn refuses
        # it), so "no access log" is spelled /dev/null here.
        GUNICORN_ACCESSLOG=os.devnull,
    )
    env.pop("TEST_DATABASE_NAME", None)
    return env


def _wait_until_healthy(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if requests.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer /healthz within {START_TIMEOUT_SECONDS}s:\n{log.read_text()[-4000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop exactly this gunicorn (its master's pid); the master stops its own workers."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT_SECONDS)


@pytest.fixture(scope="module")
def live_gunicorn(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[str]:
    """Start gunicorn on a free port against the test database; yield its base URL."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    workdir = tmp_path_factory.mktemp("gunicorn")
    log = workdir / "gunicorn.log"
    gunicorn = Path(sys.executable).parent / "gunicorn"
    with django_db_blocker.unblock():  # reading settings_dict touches no database, but be explicit
        env = server_environment(port, workdir)
    with log.open("wb") as output:
        # No control socket: by default every gunicorn opens ~/.gunicorn/gunicorn.ctl, and two
        # instances (parallel suites, `make run`) would take each other's.
        process = subprocess.Popen(
            [str(gunicorn), "softfactory.wsgi", "-c", "gunicorn.conf.py", "--no-control-socket"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_healthy(process, base_url, log)
        yield base_url
    finally:
        _stop(process)
