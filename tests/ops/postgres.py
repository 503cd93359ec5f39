"""Throwaway PostgreSQL clusters (a fresh `initdb` in a temporary directory) and scratch databases."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2

from tests.ops.live import free_port
from tests.stack import port_of


def pg_bin() -> Path:
    return max(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3])).parent


def as_postgres(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root (scripts/stack does the same).
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def postgres_workdir(prefix: str) -> Path:
    """A temporary directory the PostgreSQL OS user owns (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    path.chmod(0o700)
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
    return path


@contextmanager
def fresh_cluster() -> Iterator[int]:
    """A brand-new cluster (initdb, trust on 127.0.0.1, no Unix socket) on a free port; its port."""
    workdir = postgres_workdir("sf-ops-cluster-")
    datadir = workdir / "data"
    port = free_port()
    bindir = pg_bin()
    try:
        subprocess.run(
            as_postgres([str(bindir / "initdb"), "-D", str(datadir), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8"]),
            check=True, capture_output=True,
        )  # fmt: skip
        options = f"-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off"
        subprocess.run(
            as_postgres([str(bindir / "pg_ctl"), "-D", str(datadir), "-o", options, "-l", str(workdir / "log"), "-w", "-t", "60", "start"]),
            check=True, capture_output=True,
        )  # fmt: skip
        yield port
    finally:
        subprocess.run(
            as_postgres([str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "-w", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(workdir, ignore_errors=True)


def admin_connection(port: int, dbname: str = "postgres"):
    conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname=dbname)
    conn.autocommit = True
    return conn


@contextmanager
def scratch_database(prefix: str = "sf_ops_scratch") -> Iterator[str]:
    """A new database on the stack's primary, owned by the app role, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = admin_connection(port_of("primary"))
    try:
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}" OWNER softfactory')
        yield name
    finally:
        with conn.cursor() as cur:
            for _ in range(3):
                try:
                    cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    break
                except psycopg2.Error:
                    time.sleep(1)
        conn.close()
