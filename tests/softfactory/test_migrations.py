"""Index migrations on a busy table, INVALID leftovers, migrate's lock_timeout, check_indexes.

Every test that touches a database gets its own scratch database (CREATE DATABASE
sf_scratch_<random> on the primary, dropped WITH (FORCE) afterwards): never the shared test
database and never inside a test transaction, because concurrent index builds can't run in
one and wait for every older transaction of their database. The real commands run as
`manage.py` subprocesses with DATABASE_URL pointing at the scratch database, so they also
prove the project's migrations apply to a fresh database.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import secrets
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg2
import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.operations import RemoveIndexConcurrently
from django.db import NotSupportedError, connections, models
from django.db.migrations import operations
from django.db.migrations.loader import MigrationLoader
from django.test import override_settings
from psycopg2 import sql

from softfactory.migration_ops import AddIndexConcurrentlySafely, index_state, migration_session

ROOT = Path(__file__).resolve().parents[2]
CHEF_ROWS = 200_000

# The tables the issue calls large: every index on them must be built concurrently.
BIG_TABLES = {
    ("coocook", "chef"),
    ("coocook", "booking"),
    ("coocook", "review"),
    ("review", "campaign"),
    ("review", "application"),
    ("sns", "snspost"),
    ("platform_core", "payment"),
}
SEED_INDEXES = {
    ("coocook", "chef"): ["is_active", "cuisine_type"],
    ("coocook", "booking"): ["user", "-booking_date"],
    ("review", "campaign"): ["status", "-created_at"],
    ("sns", "snspost"): ["status", "scheduled_at"],
}
CHEF_INDEXES = ["chef_active_cuisine_idx", "chef_rating_idx"]
PLAIN_CREATE_INDEX = re.compile(r"CREATE\s+(UNIQUE\s+)?INDEX\s+(?!CONCURRENTLY)", re.IGNORECASE)

CHEF_COLUMNS = (
    "name, cuisine_type, bio, hourly_rate, currency, rating, rating_total, review_count, is_active, created_at"
)
FILL_CHEFS = f"""
INSERT INTO coocook_chef ({CHEF_COLUMNS})
SELECT 'chef ' || g, 'cuisine ' || md5(g::text), '', 50000, 'KRW', (g % 500) / 100.0, 0, 0, g % 3 <> 0, now()
FROM generate_series(1, {CHEF_ROWS}) AS g
"""
INSERT_CHEF = f"""
INSERT INTO coocook_chef ({CHEF_COLUMNS})
VALUES ('writer', 'cuisine ' || md5(random()::text), '', 50000, 'KRW', 4.5, 0, 0, true, now())
"""


# --- scratch databases ------------------------------------------------------------------


@dataclass(frozen=True)
class Scratch:
    name: str
    params: dict[str, Any]

    @property
    def url(self) -> str:
        auth = quote(self.params["user"], safe="")
        if self.params.get("password"):
            auth += ":" + quote(self.params["password"], safe="")
        return f"postgres://{auth}@{self.params['host']}:{self.params['port']}/{self.name}"

    def connect(self, *, autocommit: bool = True, statement_timeout_ms: int = 60_000) -> Any:
        conn = psycopg2.connect(**{**self.params, "options": f"-c statement_timeout={statement_timeout_ms}"})
        conn.autocommit = autocommit
        return conn

    def query(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else []


def app_params() -> dict[str, Any]:
    """psycopg2 parameters of the app's own role on the primary (the `default` alias)."""
    params = dict(connections["default"].get_connection_params())
    params.pop("cursor_factory", None)
    params.pop("options", None)
    params.setdefault("password", connections["default"].settings_dict.get("PASSWORD") or "")
    return params


def admin_connect() -> Any:
    admin_url = os.environ.get("DATABASE_ADMIN_URL")
    conn = psycopg2.connect(admin_url) if admin_url else psycopg2.connect(**{**app_params(), "dbname": "postgres"})
    conn.autocommit = True
    return conn


@pytest.fixture
def scratch() -> Iterator[Scratch]:
    name = f"sf_scratch_{secrets.token_hex(6)}"
    params = app_params()
    with contextlib.closing(admin_connect()) as admin, admin.cursor() as cursor:
        cursor.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(params["user"]))
        )
    try:
        yield Scratch(name=name, params={**params, "dbname": name})
    finally:
        with contextlib.closing(admin_connect()) as admin, admin.cursor() as cursor:
            cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def command_env(scratch: Scratch, **overrides: str | None) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "softfactory.settings",
        "DATABASE_URL": scratch.url,
        "DATABASE_REPLICA_URLS": "",
    }
    env.setdefault("SECRET_KEY", settings.SECRET_KEY)
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def manage(scratch: Scratch, *args: str, timeout: float = 60, **env: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=command_env(scratch, **env),
        text=True,
        capture_output=True,
        timeout=timeout,
    )


def popen_manage(scratch: Scratch, *args: str, **env: str | None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=command_env(scratch, **env),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def migrate_ok(scratch: Scratch, *args: str) -> None:
    result = manage(scratch, "migrate", "--noinput", *args)
    assert result.returncode == 0, result.stdout + result.stderr


def chef_table_with_rows(scratch: Scratch) -> int:
    """Migrate up to coocook 0001 (tables, no indexes yet), fill chefs; the table's oid."""
    migrate_ok(scratch, "coocook", "0001_initial")
    with contextlib.closing(scratch.connect()) as conn, conn.cursor() as cursor:
        cursor.execute(FILL_CHEFS)
        cursor.execute("VACUUM ANALYZE coocook_chef")
        cursor.execute("SELECT 'coocook_chef'::regclass::oid")
        return int(cursor.fetchone()[0])


def index_rows(scratch: Scratch, names: list[str]) -> dict[str, tuple[bool, int]]:
    """name -> (indisvalid, index oid) for those of the names that exist."""
    rows = scratch.query(
        "SELECT c.relname, i.indisvalid, c.oid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = ANY(%s)",
        [names],
    )
    return {name: (bool(valid), int(oid)) for name, valid, oid in rows}


def applied(scratch: Scratch, app: str) -> set[str]:
    return {row[0] for row in scratch.query("SELECT name FROM django_migrations WHERE app = %s", [app])}


def wait_for(predicate: Any, *, timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.02)
    return value


# --- writers and the pg_locks sampler ---------------------------------------------------

SAMPLE_SQL = """
SELECT 'build', p.pid, p.phase FROM pg_stat_progress_create_index p
 WHERE p.datname = current_database() AND p.relid = %(table)s
UNION ALL
SELECT 'wait', l.pid, l.mode FROM pg_locks l
 WHERE l.locktype = 'relation' AND NOT l.granted AND l.relation = %(table)s
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


@dataclass
class BusyTable:
    """What writer threads and a pg_locks sampler saw while something ran against a table."""

    writes: list[tuple[float, float]] = field(default_factory=list)  # (start, end), monotonic
    writer_pids: set[int] = field(default_factory=set)
    build_samples: list[float] = field(default_factory=list)  # times a build on the table was seen
    waits: list[tuple[float, int, str]] = field(default_factory=list)  # (time, pid, lock mode)
    samples: int = 0
    errors: list[BaseException] = field(default_factory=list)

    def writes_during_build(self) -> list[tuple[float, float]]:
        first, last = self.build_samples[0], self.build_samples[-1]
        return [w for w in self.writes if first <= w[1] <= last]

    def writer_waits(self) -> list[tuple[float, int, str]]:
        return [w for w in self.waits if w[1] in self.writer_pids]


@contextlib.contextmanager
def busy_table(scratch: Scratch, table_oid: int, *, writers: int = 4) -> Iterator[BusyTable]:
    """Writer threads inserting in autocommit and a sampler polling pg_locks every ~20 ms."""
    run = BusyTable()
    stop = threading.Event()

    def writer() -> None:
        try:
            with contextlib.closing(scratch.connect()) as conn, conn.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                run.writer_pids.add(cursor.fetchone()[0])
                while not stop.is_set():
                    start = time.monotonic()
                    cursor.execute(INSERT_CHEF)
                    run.writes.append((start, time.monotonic()))
        except BaseException as exc:
            run.errors.append(exc)

    def sampler() -> None:
        try:
            with contextlib.closing(scratch.connect()) as conn, conn.cursor() as cursor:
                while not stop.is_set():
                    now = time.monotonic()
                    cursor.execute(SAMPLE_SQL, {"table": table_oid})
                    rows = cursor.fetchall()
                    if any(kind == "build" for kind, _, _ in rows):
                        run.build_samples.append(now)
                    run.waits.extend((now, pid, mode) for kind, pid, mode in rows if kind == "wait")
                    run.samples += 1
                    time.sleep(0.02)
        except BaseException as exc:
            run.errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(writers)] + [threading.Thread(target=sampler)]
    for thread in threads:
        thread.start()
    try:
        wait_for(
            lambda: run.errors or (len(run.writer_pids) == writers and len(run.writes) >= 20 and run.samples >= 3),
            what="writers and sampler to start",
        )
        yield run
        time.sleep(0.1)  # a few writes after the build, so the window is closed on both sides
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not run.errors, run.errors


# --- in-process operations against a scratch database -----------------------------------


@contextlib.contextmanager
def scratch_alias(scratch: Scratch, django_db_blocker: Any) -> Iterator[str]:
    """A temporary Django alias (the project's backend) for the scratch database, routers off."""
    alias = f"scratch_{scratch.name}"
    settings_dict = copy.deepcopy(connections["default"].settings_dict)
    settings_dict["NAME"] = scratch.name
    connections.settings[alias] = settings_dict
    try:
        # The project's router migrates only `default`; this alias stands in for it.
        with django_db_blocker.unblock(), override_settings(DATABASE_ROUTERS=[]):
            yield alias
    finally:
        connections[alias].close()
        with contextlib.suppress(AttributeError):
            del connections[alias]
        del connections.settings[alias]


def apply_project_index(conn: Any, app_label: str, migration: str, index_name: str) -> None:
    """Run one AddIndexConcurrentlySafely of the project's migrations through a schema editor."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    key = (app_label, migration)
    from_state = loader.project_state(key, at_end=False)
    (operation,) = [
        op
        for op in loader.get_migration(*key).operations
        if isinstance(op, AddIndexConcurrentlySafely) and op.index.name == index_name
    ]
    to_state = from_state.clone()
    operation.state_forwards(app_label, to_state)
    with conn.schema_editor(atomic=False) as editor:
        operation.database_forwards(app_label, editor, from_state, to_state)


# --- the tests ------------------------------------------------------------------------


def test_writers_keep_writing_and_never_wait_on_a_lock_while_the_index_migration_runs(scratch):
    chef = chef_table_with_rows(scratch)

    with busy_table(scratch, chef) as run:
        result = manage(scratch, "migrate", "--noinput", "coocook", "0002_indexes")

    assert result.returncode == 0, result.stdout + result.stderr
    assert len(run.build_samples) >= 3, f"the build was hardly observed ({len(run.build_samples)} samples)"
    assert len(run.writes_during_build()) > 0
    assert run.writer_waits() == []
    assert {name: valid for name, (valid, _) in index_rows(scratch, CHEF_INDEXES).items()} == dict.fromkeys(
        CHEF_INDEXES, True
    )


def test_a_plain_create_index_makes_the_same_writers_wait_so_the_lock_check_can_fail(scratch):
    chef = chef_table_with_rows(scratch)

    with contextlib.closing(scratch.connect()) as ddl, ddl.cursor() as cursor, busy_table(scratch, chef) as run:
        cursor.execute('CREATE INDEX "chef_active_cuisine_idx" ON "coocook_chef" ("is_active", "cuisine_type")')

    assert run.build_samples, "the plain build was never observed"
    waits = run.writer_waits()
    assert waits, f"no writer waited during a plain CREATE INDEX ({run.samples} samples)"
    assert {mode for _, _, mode in waits} == {"RowExclusiveLock"}


def test_an_index_left_invalid_by_a_lock_timeout_is_listed_by_check_indexes_and_rebuilt_by_migrate(scratch):
    chef_table_with_rows(scratch)
    with contextlib.closing(scratch.connect(autocommit=False)) as blocker:
        with blocker.cursor() as cursor:
            cursor.execute(INSERT_CHEF)  # an open write transaction on the table
        with contextlib.closing(scratch.connect()) as ddl, ddl.cursor() as cursor:
            cursor.execute("SET lock_timeout = '300ms'")
            with pytest.raises(psycopg2.errors.LockNotAvailable):
                cursor.execute(
                    'CREATE INDEX CONCURRENTLY "chef_active_cuisine_idx" ON "coocook_chef" ("is_active", "cuisine_type")'
                )
        blocker.rollback()
    ((valid, leftover_oid),) = index_rows(scratch, ["chef_active_cuisine_idx"]).values()
    assert valid is False

    check = manage(scratch, "check_indexes")
    assert check.returncode != 0
    assert "INVALID public.chef_active_cuisine_idx on public.coocook_chef" in check.stdout
    assert "chef_active_cuisine_idx" in check.stderr

    migrate_ok(scratch)

    rebuilt = index_rows(scratch, ["chef_active_cuisine_idx"])
    assert rebuilt["chef_active_cuisine_idx"][0] is True
    assert rebuilt["chef_active_cuisine_idx"][1] != leftover_oid  # dropped and built again
    clean = manage(scratch, "check_indexes")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "No INVALID indexes" in clean.stdout


def test_a_migrate_cancelled_mid_build_leaves_an_invalid_index_that_the_next_migrate_rebuilds(scratch):
    chef = chef_table_with_rows(scratch)
    with contextlib.closing(scratch.connect(autocommit=False)) as blocker:
        with blocker.cursor() as cursor:
            cursor.execute(INSERT_CHEF)  # the build on coocook_chef waits for this transaction
        process = popen_manage(scratch, "migrate", "--noinput", "coocook")
        try:
            pid, building = wait_for(
                lambda: scratch.query(
                    "SELECT pid, index_relid::regclass::text FROM pg_stat_progress_create_index "
                    "WHERE datname = current_database() AND relid = %s AND phase LIKE 'waiting%%'",
                    [chef],
                ),
                what="the concurrent build to wait for the open transaction",
            )[0]
            # What an operator's pg_cancel_backend, or a deploy timeout, does to a running migrate.
            assert scratch.query("SELECT pg_cancel_backend(%s)", [pid]) == [(True,)]
            _, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        blocker.rollback()

    assert process.returncode != 0
    assert "canceling statement due to user request" in stderr
    assert building in CHEF_INDEXES
    assert index_rows(scratch, [building])[building][0] is False
    assert "0002_indexes" not in applied(scratch, "coocook")

    migrate_ok(scratch)

    states = index_rows(scratch, [*CHEF_INDEXES, "booking_user_date_idx", "review_chef_created_idx"])
    assert {name: valid for name, (valid, _) in states.items()} == {
        "chef_active_cuisine_idx": True,
        "chef_rating_idx": True,
        "booking_user_date_idx": True,
        "review_chef_created_idx": True,
    }
    assert "0002_indexes" in applied(scratch, "coocook")


def test_rerunning_the_index_migration_over_valid_indexes_keeps_them_and_unapplying_drops_them(scratch):
    migrate_ok(scratch, "coocook")
    before = index_rows(scratch, CHEF_INDEXES)
    assert {valid for valid, _ in before.values()} == {True}
    migrate_ok(scratch, "--fake", "coocook", "0001_initial")

    migrate_ok(scratch, "coocook")  # a plain CREATE INDEX CONCURRENTLY would fail: "already exists"

    assert index_rows(scratch, CHEF_INDEXES) == before
    migrate_ok(scratch, "coocook", "0001_initial")
    assert index_rows(scratch, CHEF_INDEXES) == {}


def test_sqlmigrate_shows_the_concurrent_builds_without_running_them(scratch):
    migrate_ok(scratch, "coocook", "0001_initial")

    result = manage(scratch, "sqlmigrate", "coocook", "0002_indexes")

    assert result.returncode == 0, result.stderr
    assert 'CREATE INDEX CONCURRENTLY "chef_active_cuisine_idx" ON "coocook_chef"' in result.stdout
    assert index_rows(scratch, CHEF_INDEXES) == {}


def test_an_invalid_index_that_another_session_is_still_building_is_left_alone(scratch, django_db_blocker):
    chef_table_with_rows(scratch)
    blocker = scratch.connect(autocommit=False)
    builder = scratch.connect()
    builder_pid = builder.get_backend_pid()
    build_errors: list[BaseException] = []

    def build() -> None:
        try:
            with builder.cursor() as cursor:
                cursor.execute('CREATE INDEX CONCURRENTLY "chef_active_cuisine_idx" ON "coocook_chef" ("is_active")')
        except BaseException as exc:
            build_errors.append(exc)

    thread = threading.Thread(target=build)
    try:
        with blocker.cursor() as cursor:
            cursor.execute(INSERT_CHEF)
        thread.start()
        wait_for(lambda: index_rows(scratch, ["chef_active_cuisine_idx"]), what="the build to start")

        with scratch_alias(scratch, django_db_blocker) as alias:
            conn = connections[alias]
            state = index_state(conn, "chef_active_cuisine_idx")
            assert state is not None
            assert (state.valid, state.builder_pid) == (False, builder_pid)
            with pytest.raises(NotSupportedError, match="being built right now"):
                apply_project_index(conn, "coocook", "0002_indexes", "chef_active_cuisine_idx")
        check = manage(scratch, "check_indexes")
        assert check.returncode == 0, check.stdout + check.stderr
        assert f"building public.chef_active_cuisine_idx on public.coocook_chef (pid {builder_pid}" in check.stdout
    finally:
        blocker.rollback()
        thread.join(timeout=60)
        blocker.close()
        builder.close()
    assert build_errors == []
    assert index_rows(scratch, ["chef_active_cuisine_idx"])["chef_active_cuisine_idx"][0] is True


def test_an_index_name_taken_on_another_table_is_reported_not_skipped(scratch, django_db_blocker):
    migrate_ok(scratch, "coocook", "0001_initial")
    scratch.query('CREATE INDEX "chef_rating_idx" ON "coocook_booking" ("guests")')

    with (
        scratch_alias(scratch, django_db_blocker) as alias,
        pytest.raises(NotSupportedError, match="coocook_booking"),
    ):
        apply_project_index(connections[alias], "coocook", "0002_indexes", "chef_rating_idx")


# A throwaway app whose migrations use RunSQL and RunPython: the statements that a per-operation
# setting (rather than migrate's session one) would leave without a lock_timeout.
PROBE_DRIVER = textwrap.dedent("""
    import sys
    from django.conf import settings
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "sf_probe"]
    from django.core.management import execute_from_command_line
    execute_from_command_line(["manage.py", *sys.argv[1:]])
""")
PROBE_0001 = textwrap.dedent("""
    from django.db import migrations


    def record_session(apps, schema_editor):
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO sf_probe_session VALUES (current_setting('lock_timeout'), current_setting('statement_timeout'))"
            )


    class Migration(migrations.Migration):
        # auth's tables exist afterwards, so the post_migrate handlers have what they need.
        dependencies = [("auth", "0012_alter_user_first_name_max_length")]
        operations = [
            migrations.RunSQL("CREATE TABLE sf_probe_hot (id bigint PRIMARY KEY)"),
            migrations.RunSQL("CREATE TABLE sf_probe_session (lock_timeout text, statement_timeout text)"),
            migrations.RunPython(record_session),
        ]
""")
PROBE_0002 = textwrap.dedent("""
    from django.db import migrations


    class Migration(migrations.Migration):
        dependencies = [("sf_probe", "0001_initial")]
        operations = [migrations.RunSQL("ALTER TABLE sf_probe_hot ADD COLUMN note text")]
""")


def test_migrate_runs_runsql_and_runpython_under_its_timeouts_and_an_alter_behind_an_open_transaction_fails_fast(
    scratch, tmp_path
):
    migrations_dir = tmp_path / "sf_probe" / "migrations"
    migrations_dir.mkdir(parents=True)
    (tmp_path / "sf_probe" / "__init__.py").write_text("")
    (migrations_dir / "__init__.py").write_text("")
    (migrations_dir / "0001_initial.py").write_text(PROBE_0001)
    pythonpath = os.pathsep.join([str(tmp_path), str(ROOT)])

    def probe_migrate(lock_timeout: str, *, popen: bool = False) -> Any:
        env = command_env(
            scratch, PYTHONPATH=pythonpath, MIGRATION_LOCK_TIMEOUT=lock_timeout, MIGRATION_STATEMENT_TIMEOUT="90s"
        )
        args = [sys.executable, "-c", PROBE_DRIVER, "migrate", "--noinput", "sf_probe"]
        if popen:
            return subprocess.Popen(args, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return subprocess.run(args, cwd=ROOT, env=env, text=True, capture_output=True, timeout=60)

    first = probe_migrate("1500ms")
    assert first.returncode == 0, first.stdout + first.stderr
    assert scratch.query("SELECT * FROM sf_probe_session") == [("1500ms", "90s")]

    (migrations_dir / "0002_alter_hot_table.py").write_text(PROBE_0002)
    with contextlib.closing(scratch.connect(autocommit=False)) as blocker:
        with blocker.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM sf_probe_hot")  # an open transaction, reads only

        started = time.monotonic()
        failed = probe_migrate("300ms")
        elapsed = time.monotonic() - started
        assert failed.returncode != 0
        assert "LockNotAvailable" in failed.stderr
        assert "lock timeout" in failed.stderr
        assert elapsed < 30
        assert blocker.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_INTRANS
        assert "0002_alter_hot_table" not in applied(scratch, "sf_probe")

        # Control: without a lock_timeout the same ALTER queues behind the transaction.
        waiting = probe_migrate("0", popen=True)
        try:
            wait_for(
                lambda: scratch.query(
                    "SELECT 1 FROM pg_locks WHERE NOT granted AND mode = 'AccessExclusiveLock' "
                    "AND relation = 'sf_probe_hot'::regclass"
                ),
                what="the ALTER TABLE to queue for its lock",
            )
            time.sleep(1.0)
            assert waiting.poll() is None, "without lock_timeout the ALTER should still be waiting"
            blocker.rollback()
            stdout, stderr = waiting.communicate(timeout=60)
        finally:
            if waiting.poll() is None:
                waiting.kill()
                waiting.communicate()
    assert waiting.returncode == 0, stdout + stderr
    assert scratch.query(
        "SELECT 1 FROM information_schema.columns WHERE table_name = 'sf_probe_hot' AND column_name = 'note'"
    )


def test_the_migrate_session_serialises_runs_and_restores_the_previous_timeouts(scratch, django_db_blocker):
    def settings_of(conn: Any) -> tuple[str, str]:
        with conn.cursor() as cursor:
            cursor.execute("SELECT current_setting('lock_timeout'), current_setting('statement_timeout')")
            return tuple(cursor.fetchone())

    waited: list[str] = []
    second_ran = threading.Event()
    errors: list[BaseException] = []

    def second_migrate() -> None:
        second = connections[alias]  # this thread's own connection
        try:
            with migration_session(second, lock_timeout="1s", statement_timeout="1min", on_wait=waited.append):
                second_ran.set()
        except BaseException as exc:
            errors.append(exc)
        finally:
            second.close()

    with scratch_alias(scratch, django_db_blocker) as alias:
        first = connections[alias]
        before = settings_of(first)
        with migration_session(first, lock_timeout="750ms", statement_timeout="45s"):
            assert settings_of(first) == ("750ms", "45s")
            thread = threading.Thread(target=second_migrate)
            thread.start()
            wait_for(lambda: waited or errors, what="the second migrate to wait for the first")
            time.sleep(0.2)
            assert not second_ran.is_set()
        thread.join(timeout=30)
        after = settings_of(first)

    assert errors == []
    assert second_ran.is_set()
    assert after == before
    assert scratch.query(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    ) == [(0,)]


def test_a_bad_migration_timeout_is_refused_before_anything_runs(scratch):
    result = manage(scratch, "migrate", "--noinput", MIGRATION_LOCK_TIMEOUT="five seconds")

    assert result.returncode != 0
    assert "MIGRATION_LOCK_TIMEOUT='five seconds' is not a PostgreSQL duration" in result.stderr
    assert scratch.query("SELECT count(*) FROM pg_class WHERE relname = 'django_migrations'") == [(0,)]


def test_every_index_on_the_big_tables_is_built_concurrently_by_a_non_atomic_migration():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    project = {app for app, _ in BIG_TABLES}
    migrations = {key: m for key, m in loader.disk_migrations.items() if key[0] in project}
    created_in = {
        (key[0], op.name_lower): key
        for key, migration in migrations.items()
        for op in migration.operations
        if isinstance(op, operations.CreateModel)
    }
    built: dict[tuple[str, str], dict[str, models.Index]] = {table: {} for table in BIG_TABLES}
    problems = []
    for key, migration in sorted(migrations.items()):
        for op in migration.operations:
            if isinstance(op, operations.RunSQL) and PLAIN_CREATE_INDEX.search(str(op.sql)):
                problems.append(f"{key[0]}.{key[1]}: RunSQL builds an index without CONCURRENTLY")
            table = (key[0], getattr(op, "model_name_lower", getattr(op, "name_lower", "")))
            if table not in BIG_TABLES:
                continue
            where = f"{key[0]}.{key[1]}: {op.describe()}"
            if isinstance(op, operations.AddIndex):
                if not isinstance(op, AddIndexConcurrentlySafely):
                    problems.append(f"{where} is not AddIndexConcurrentlySafely")
                elif migration.atomic:
                    problems.append(f"{where} is in an atomic migration")
                else:
                    built[table][op.index.name] = op.index
            elif isinstance(op, operations.CreateModel) and op.options.get("indexes"):
                problems.append(f"{where} creates indexes with the table")
            elif key == created_in.get(table):
                continue  # constraints and field indexes on the table its own migration creates (empty)
            elif isinstance(op, operations.RemoveIndex) and not isinstance(op, RemoveIndexConcurrently):
                problems.append(f"{where} drops an index under an ACCESS EXCLUSIVE lock")
            elif isinstance(op, operations.AddConstraint) and isinstance(
                getattr(op, "constraint", None), (models.UniqueConstraint, ExclusionConstraint)
            ):
                problems.append(f"{where} builds an index under a strong lock")
            elif isinstance(op, (operations.AddField, operations.AlterField)) and (
                getattr(op.field, "db_index", False) or op.field.unique
            ):
                problems.append(f"{where} builds a field index without CONCURRENTLY")
            elif isinstance(op, operations.AlterUniqueTogether) and op.option_value:
                problems.append(f"{where} builds a unique index without CONCURRENTLY")
    assert problems == []

    for app_label, model_name in BIG_TABLES:
        declared = {index.name for index in apps.get_model(app_label, model_name)._meta.indexes}
        assert declared, f"{app_label}.{model_name} declares no index"
        assert declared == set(built[(app_label, model_name)]), f"{app_label}.{model_name}"
    for table, fields in SEED_INDEXES.items():
        assert fields in [index.fields for index in built[table].values()], f"seed index {table} {fields}"
