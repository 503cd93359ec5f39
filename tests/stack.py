"""Helpers for tests that look at, or break, the servers of the local stack."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections

ROOT = Path(__file__).resolve().parent.parent
STACK_SCRIPT = ROOT / "scripts" / "stack"


def stack_dir() -> Path:
    return Path(os.environ.get("SOFTFACTORY_STACK", ROOT / "var"))


def stack_state(var: Path | None = None) -> dict[str, Any]:
    return json.loads(((var or stack_dir()) / "stack.json").read_text())


def run_stack(
    *args: str, var: Path | None = None, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run scripts/stack against this suite's stack, or another one under `var`."""
    env = {**os.environ, "SOFTFACTORY_VAR": str(var or stack_dir())}
    result = subprocess.run([str(STACK_SCRIPT), *args], env=env, text=True, capture_output=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"scripts/stack {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def server_identity(alias: str) -> tuple[int, bool]:
    """(port, in recovery) of the server that alias's connection really talks to."""
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT inet_server_port(), pg_is_in_recovery()")
        port, in_recovery = cursor.fetchone()
    return int(port), bool(in_recovery)


def primary_insert_lsn() -> str:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_insert_lsn()::text")
        return str(cursor.fetchone()[0])


def wait_for_replay(alias: str | None = None, *, timeout: float = 15.0) -> None:
    """Block until the replica(s) replayed everything the primary has written so far."""
    target = primary_insert_lsn()
    for replica in [alias] if alias else list(settings.REPLICA_ALIASES):
        deadline = time.monotonic() + timeout
        while True:
            with connections[replica].cursor() as cursor:
                cursor.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target])
                if cursor.fetchone()[0]:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"{replica} did not replay {target} within {timeout}s")
            time.sleep(0.02)


def close_all_connections() -> None:
    for conn in connections.all():
        conn.close()


@contextmanager
def server_stopped(name: str, *, mode: str = "fast") -> Iterator[None]:
    """Stop one server of the suite's stack for the block, then bring the whole stack back."""
    run_stack("ctl", name, "stop", "--mode", mode)
    try:
        yield
    finally:
        run_stack("start")
        close_all_connections()


def admin_sql(server: str, sql: str) -> Any:
    """Run SQL as the superuser on one server of the suite's stack (pause replay, settings...)."""
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=stack_state()["ports"][server], user="postgres", dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone() if cursor.description else None
    finally:
        conn.close()


@contextmanager
def replay_paused(*servers: str) -> Iterator[None]:
    """Pause WAL replay on replicas for the block: they fall behind while still streaming."""
    for server in servers:
        admin_sql(server, "SELECT pg_wal_replay_pause()")
    try:
        yield
    finally:
        for server in servers:
            admin_sql(server, "SELECT pg_wal_replay_resume()")


def port_of(server: str) -> int:
    return int(stack_state()["ports"][server])
