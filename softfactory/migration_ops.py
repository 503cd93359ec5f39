"""Migration operations and session settings that keep `manage.py migrate` safe on a busy database.

`AddIndexConcurrentlySafely` builds an index with CREATE INDEX CONCURRENTLY, so writers are
never blocked, and makes the build re-runnable: a failed concurrent build (a lock timeout, a
cancelled statement, a crash) leaves an INVALID index under the same name, which PostgreSQL
neither uses nor lets a plain re-run replace. This operation drops such a leftover
concurrently and builds it again; a valid index of that name means there is nothing to do.
An INVALID index that another session is building right now is not a leftover: the operation
refuses to touch it rather than drop a build in progress.
The build itself runs without lock_timeout/statement_timeout: it waits for older
transactions by design, and a timeout there is exactly what leaves INVALID indexes behind.

`migration_session` is what `manage.py migrate` wraps itself in (platform_core's override):
one migrate per database at a time (an advisory lock) and a session-level lock_timeout and
statement_timeout, so every statement that takes a strong lock — schema editor DDL, RunSQL,
RunPython — fails fast instead of queueing behind an open transaction and stalling the
traffic queued behind it. `invalid_indexes` is the query behind `manage.py check_indexes`.
docs/MIGRATIONS.md explains all of it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import Error as DjangoDatabaseError
from django.db import NotSupportedError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.backends.signals import connection_created
from django.db.migrations.state import ProjectState

# An index under construction by CREATE INDEX CONCURRENTLY is INVALID until the build ends;
# pg_stat_progress_create_index tells it apart from a leftover of a failed build. (A role
# without pg_read_all_stats only sees its own sessions' builds: others look like leftovers,
# which errs on the side of reporting.)
_BUILDER_PID = """(SELECT p.pid FROM pg_stat_progress_create_index p
        WHERE p.datname = current_database() AND p.pid <> pg_backend_pid()
          AND (p.index_relid = i.indexrelid
               OR (p.command = 'REINDEX CONCURRENTLY' AND p.relid = i.indrelid
                   AND c.relname ~ '_cc(new|old)[0-9]*$'))
        LIMIT 1)"""
_INDEX_JOINS = """FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace"""

INDEX_STATE_SQL = f"""
SELECT i.indisvalid, t.relname, {_BUILDER_PID}
{_INDEX_JOINS}
WHERE c.relname = %s AND n.nspname = current_schema()
"""

INVALID_INDEXES_SQL = f"""
SELECT n.nspname, c.relname, t.relname, {_BUILDER_PID}
{_INDEX_JOINS}
WHERE NOT i.indisvalid
ORDER BY n.nspname, c.relname
"""

# pg_advisory_lock key ("SFMIGR"): advisory locks are per database, so this serialises
# migrate runs on one database and nothing else.
MIGRATE_LOCK_KEY = 0x53464D494752

# What SET lock_timeout / statement_timeout accept: a number with an optional unit.
_DURATION = re.compile(r"^\d+(\.\d+)?\s*(us|ms|s|min|h|d)?$")


@dataclass(frozen=True)
class IndexState:
    """What the catalog says about an index name in the current schema."""

    valid: bool
    table: str
    builder_pid: int | None


@dataclass(frozen=True)
class InvalidIndex:
    """An INVALID index; `builder_pid` is set while another session is still building it."""

    schema: str
    name: str
    table: str
    builder_pid: int | None


def index_state(connection: BaseDatabaseWrapper, name: str) -> IndexState | None:
    """The state of the index of that name in the current schema, None when there is none."""
    with connection.cursor() as cursor:
        cursor.execute(INDEX_STATE_SQL, [name])
        row = cursor.fetchone()
    return None if row is None else IndexState(valid=bool(row[0]), table=row[1], builder_pid=row[2])


def index_validity(schema_editor: BaseDatabaseSchemaEditor, name: str) -> bool | None:
    """True/False for a valid/INVALID index of that name, None when there is none."""
    state = index_state(schema_editor.connection, name)
    return None if state is None else state.valid


def invalid_indexes(connection: BaseDatabaseWrapper) -> list[InvalidIndex]:
    """Every INVALID index in the connection's database, in all schemas."""
    with connection.cursor() as cursor:
        cursor.execute(INVALID_INDEXES_SQL)
        rows = cursor.fetchall()
    return [InvalidIndex(schema=row[0], name=row[1], table=row[2], builder_pid=row[3]) for row in rows]


def _current_timeouts(connection: BaseDatabaseWrapper) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout'), current_setting('statement_timeout')")
        lock_timeout, statement_timeout = cursor.fetchone()
    return str(lock_timeout), str(statement_timeout)


def _set_timeouts(connection: BaseDatabaseWrapper, lock_timeout: str, statement_timeout: str) -> None:
    # Session level (is_local = false): it must outlive each migration's own transaction.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
            [lock_timeout, statement_timeout],
        )


@contextlib.contextmanager
def _restoring_timeouts(connection: BaseDatabaseWrapper, lock_timeout: str, statement_timeout: str) -> Iterator[None]:
    previous = _current_timeouts(connection)
    _set_timeouts(connection, lock_timeout, statement_timeout)
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        try:
            _set_timeouts(connection, *previous)
        except DjangoDatabaseError:
            # A dead connection must not hide the error that killed it.
            if not failed:
                raise


def _without_timeouts(schema_editor: BaseDatabaseSchemaEditor, sql: str) -> None:
    with _restoring_timeouts(schema_editor.connection, "0", "0"), schema_editor.connection.cursor() as cursor:
        cursor.execute(sql)


def validate_duration(setting: str, value: str) -> str:
    """The value, stripped, if PostgreSQL accepts it as a timeout; ValueError otherwise."""
    value = str(value).strip()
    if not _DURATION.match(value):
        raise ValueError(f"{setting}={value!r} is not a PostgreSQL duration (e.g. 5s, 500ms, 2min, 0 for none)")
    return value


@contextlib.contextmanager
def migration_session(
    connection: BaseDatabaseWrapper,
    *,
    lock_timeout: str,
    statement_timeout: str,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the per-database migrate lock and session timeouts for the block, then restore them."""
    lock_timeout = validate_duration("lock_timeout", lock_timeout)
    statement_timeout = validate_duration("statement_timeout", statement_timeout)
    in_transaction = connection.in_atomic_block
    previous = _current_timeouts(connection)

    def reapply(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
        # A reconnect mid-migrate starts a new session: give it the same timeouts.
        if connection is target:
            _set_timeouts(connection, lock_timeout, statement_timeout)

    target = connection
    failed = False
    locked = False
    try:
        # Another migrate on this database may legitimately run for long (concurrent builds):
        # wait for it without timeouts, then run alone.
        _set_timeouts(connection, "0", "0")
        with connection.cursor() as cursor:
            if in_transaction:
                # Inside an outer transaction a session lock could outlive a rollback.
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [MIGRATE_LOCK_KEY])
            else:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [MIGRATE_LOCK_KEY])
                if not cursor.fetchone()[0]:
                    if on_wait is not None:
                        on_wait("Another migrate is running on this database; waiting for it to finish.")
                    cursor.execute("SELECT pg_advisory_lock(%s)", [MIGRATE_LOCK_KEY])
                locked = True
        _set_timeouts(connection, lock_timeout, statement_timeout)
        connection_created.connect(reapply, weak=False)
        yield
    except BaseException:
        failed = True
        raise
    finally:
        connection_created.disconnect(reapply)
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
                    list(previous),
                )
                if locked:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATE_LOCK_KEY])
        except DjangoDatabaseError:
            if in_transaction:
                # The outer transaction is aborted; its rollback undoes these SETs and the lock.
                pass
            else:
                # A fresh session has neither the timeouts nor the lock.
                connection.close()
                if not failed:
                    raise


class AddIndexConcurrentlySafely(AddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY that drops an INVALID leftover first and skips a valid one."""

    def database_forwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: ProjectState, to_state: ProjectState
    ) -> None:
        self._ensure_not_in_transaction(schema_editor)
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        statement = self.index.create_sql(model, schema_editor, concurrently=True)
        if schema_editor.collect_sql:
            # sqlmigrate: show the build, never run it (the checks below need the live catalog).
            schema_editor.collected_sql.append("-- skipped when a valid index of this name exists; an INVALID one")
            schema_editor.collected_sql.append("-- is dropped concurrently first; runs with lock_timeout = 0")
            schema_editor.execute(statement)
            return
        state = index_state(schema_editor.connection, self.index.name)
        if state is not None and state.table != model._meta.db_table:
            raise NotSupportedError(
                f"Index {self.index.name!r} already exists on table {state.table!r}, not on "
                f"{model._meta.db_table!r}: rename one of them."
            )
        if state is not None and state.valid:
            return
        if state is not None and state.builder_pid is not None:
            raise NotSupportedError(
                f"Index {self.index.name!r} is being built right now by another session (pid "
                f"{state.builder_pid}); wait for that build to finish, then run migrate again."
            )
        quoted = schema_editor.quote_name(self.index.name)
        if state is not None:
            _without_timeouts(schema_editor, f"DROP INDEX CONCURRENTLY IF EXISTS {quoted}")
        _without_timeouts(schema_editor, str(statement))

    def database_backwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: ProjectState, to_state: ProjectState
    ) -> None:
        self._ensure_not_in_transaction(schema_editor)
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        sql = f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(self.index.name)}"
        if schema_editor.collect_sql:
            schema_editor.execute(sql)
        else:
            _without_timeouts(schema_editor, sql)

    def describe(self) -> str:
        return f"Create index {self.index.name} concurrently (re-runnable) on {self.model_name}"
