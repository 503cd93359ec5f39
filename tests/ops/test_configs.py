"""deploy/ configuration files, checked by the servers themselves: PostgreSQL boots with the
production postgresql.conf and parses pg_hba.conf, PgBouncer runs with pgbouncer.ini, and the
local stack uses the shared settings."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import shutil
import subprocess
import time

import psycopg2
import pytest

from tests.ops.live import free_port
from tests.ops.postgres import as_postgres, pg_bin, postgres_workdir
from tests.ops.tools import DEPLOY, ROOT
from tests.stack import port_of, stack_state

PG = DEPLOY / "postgres"


@pytest.fixture(scope="module")
def initdb_cluster():
    workdir = postgres_workdir("sf-ops-conf-")
    datadir = workdir / "data"
    subprocess.run(
        as_postgres([str(pg_bin() / "initdb"), "-D", str(datadir), "-A", "trust", "-U", "postgres", "--locale=C.UTF-8"]),
        check=True, capture_output=True,
    )  # fmt: skip
    yield workdir, datadir
    subprocess.run(
        as_postgres([str(pg_bin() / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "stop"]), capture_output=True
    )
    shutil.rmtree(workdir, ignore_errors=True)


def install_conf(datadir, role: str, extra: str = "") -> None:
    for name, source in (
        ("postgresql.conf", f"postgresql.{role}.conf"),
        ("postgresql.common.conf", "postgresql.common.conf"),
    ):
        text = (PG / source).read_text()
        if name == "postgresql.conf":
            # This machine's paths, not the container's: the hba file of the data directory.
            text = text.replace("hba_file = '/etc/postgresql/pg_hba.conf'", "") + extra
        (datadir / name).write_text(text)
        shutil.chown(datadir / name, "postgres", "postgres")


def show(datadir, name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        as_postgres([str(pg_bin() / "postgres"), "-D", str(datadir), "-C", name]), capture_output=True, text=True
    )


@pytest.mark.parametrize("role", ["primary", "replica"])
def test_postgres_accepts_the_production_configuration(initdb_cluster, role):
    _, datadir = initdb_cluster
    install_conf(datadir, role)
    expected = {
        "max_connections": "200",
        "hot_standby_feedback": "on",
        "log_min_duration_statement": "250",  # -C prints milliseconds
        "wal_level": "replica",
        "shared_preload_libraries": "pg_stat_statements",
        "max_parallel_workers": "4",
    }
    for name, value in expected.items():
        result = show(datadir, name)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == value, name


def test_a_wrong_setting_is_caught(initdb_cluster):
    _, datadir = initdb_cluster
    install_conf(datadir, "primary", extra="\nshared_buffers = plenty\n")
    result = show(datadir, "shared_buffers")
    assert result.returncode != 0
    assert "shared_buffers" in result.stderr


def test_the_primary_boots_with_it_and_the_hba_file_parses(initdb_cluster):
    workdir, datadir = initdb_cluster
    install_conf(datadir, "primary", extra="\nshared_buffers = 128MB\nhuge_pages = off\n")
    port = free_port()
    options = f"-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
    started = subprocess.run(
        as_postgres([str(pg_bin() / "pg_ctl"), "-D", str(datadir), "-o", options, "-l", str(workdir / "log"), "-w", "-t", "60", "start"]),
        capture_output=True, text=True,
    )  # fmt: skip
    assert started.returncode == 0, (workdir / "log").read_text()[-2000:]
    conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE EXTENSION pg_stat_statements")  # preloaded, so it works
            cur.execute("SELECT count(*) >= 0 FROM pg_stat_statements")
            assert cur.fetchone()[0] is True
            cur.execute("SHOW idle_in_transaction_session_timeout")
            assert cur.fetchone()[0] == "1min"
            # pg_hba_file_rules re-reads the file on disk: the production rules, without activating them.
            shutil.copy(PG / "pg_hba.conf", datadir / "pg_hba.conf")
            cur.execute("SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL")
            assert cur.fetchall() == []
            cur.execute("SELECT type, database, user_name, auth_method FROM pg_hba_file_rules ORDER BY line_number")
            rules = cur.fetchall()
    finally:
        conn.close()
    assert ("host", ["replication"], ["replicator"], "scram-sha-256") in rules
    assert rules[-1][-1] == "reject"


def test_pgbouncer_runs_with_the_production_ini_and_sets_the_statement_timeout(stack_pool):
    # stack_pool: the stack's PgBouncer runs, so Debian's package is installed.
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    workdir = postgres_workdir("sf-ops-pgbouncer-")
    port = free_port()
    password = "ops-test-password"
    ini = (DEPLOY / "pgbouncer" / "pgbouncer.ini").read_text()
    ini = ini.replace("host=db-primary port=5432", f"host=127.0.0.1 port={port_of('primary')}")
    ini = re.sub(r"^listen_addr = .*$", "listen_addr = 127.0.0.1", ini, flags=re.M)
    ini = re.sub(r"^listen_port = .*$", f"listen_port = {port}", ini, flags=re.M)
    ini = ini.replace("/etc/pgbouncer/userlist.txt", str(workdir / "userlist.txt"))
    ini += f"\nlogfile = {workdir / 'pgbouncer.log'}\npidfile = {workdir / 'pgbouncer.pid'}\n"
    # What deploy/pgbouncer/entrypoint.sh does with the template.
    userlist = (DEPLOY / "pgbouncer" / "userlist.txt").read_text()
    for key in ("APP_DB_PASSWORD", "MONITOR_PASSWORD", "PGBOUNCER_ADMIN_PASSWORD"):
        userlist = userlist.replace("${" + key + "}", password)
    for name, text in (("pgbouncer.ini", ini), ("userlist.txt", userlist)):
        (workdir / name).write_text(text)
        shutil.chown(workdir / name, "postgres", "postgres")
    subprocess.run(as_postgres([binary, "-d", str(workdir / "pgbouncer.ini")]), check=True, capture_output=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                conn = psycopg2.connect(
                    host="127.0.0.1", port=port, user="softfactory", password=password, dbname="softfactory"
                )
                break
            except psycopg2.OperationalError:
                assert time.monotonic() < deadline, (workdir / "pgbouncer.log").read_text()
                time.sleep(0.1)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SHOW statement_timeout")
            assert cur.fetchone()[0] == "30s"
        conn.close()
        with pytest.raises(psycopg2.OperationalError):
            psycopg2.connect(host="127.0.0.1", port=port, user="softfactory", password="wrong", dbname="softfactory")
    finally:
        pid = (workdir / "pgbouncer.pid").read_text().strip() if (workdir / "pgbouncer.pid").exists() else ""
        if pid:
            subprocess.run(["kill", pid], check=False)
            time.sleep(0.3)
        shutil.rmtree(workdir, ignore_errors=True)


def load_stack_script():
    loader = importlib.machinery.SourceFileLoader("ops_stack_script", str(ROOT / "scripts" / "stack"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_the_local_stack_uses_the_shared_postgres_and_redis_settings(tmp_path):
    stack = load_stack_script()
    # PostgreSQL: deploy/postgres/postgresql.common.conf's settings under the stack's own.
    conf = stack_state()["pg_root"] + "/primary/stack.conf"
    text = subprocess.run(as_postgres(["cat", conf]), capture_output=True, text=True, check=True).stdout
    shared = stack.read_conf_settings(PG / "postgresql.common.conf")
    assert shared["log_lock_waits"] == "on"
    for key, value in shared.items():
        expected = stack.PG_SETTINGS.get(key, value)  # the stack's development values win
        assert f"{key} = {expected}\n" in text, key
    assert "fsync = off" in text
    # Redis: deploy/redis/redis.conf first, then the stack's port, paths and memory, which win.
    redis_conf = stack.redis_config(12345, tmp_path)
    production, overrides = redis_conf.split("# --- scripts/stack overrides ---")
    assert "slowlog-log-slower-than 10000" in production
    assert "maxmemory-policy volatile-lru" in production
    assert "dir /data" not in production
    assert "port 12345" in overrides and f"dir {tmp_path}" in overrides
