"""Migration operations that keep `manage.py migrate` safe on a busy database.

`AddIndexConcurrentlySafely` builds an index with CREATE INDEX CONCURRENTLY, so writers are
never blocked, and makes the build re-runnable: a failed concurrent build (a lock timeout, a
cancelled statement, a crash) leaves an INVALID index under the same name, which PostgreSQL
neither uses nor lets a plain re-run replace. This operation drops such a leftover
concurrently and builds it again; a valid index of that name means there is nothing to do.
The build itself runs without lock_timeout/statement_timeout: it waits for older
transactions by design, and a timeout there is exactly what leaves INVALID indexes behind.
"""

from __future__ import annotations

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import ProjectState

INDEX_STATE_SQL = """
SELECT i.indisvalid
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = %s AND n.nspname = current_schema()
"""


def index_validity(schema_editor: BaseDatabaseSchemaEditor, name: str) -> bool | None:
    """True/False for a valid/INVALID index of that name, None when there is none."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(INDEX_STATE_SQL, [name])
        row = cursor.fetchone()
    return None if row is None else bool(row[0])


def _without_timeouts(schema_editor: BaseDatabaseSchemaEditor, sql: str) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        lock_timeout = cursor.fetchone()[0]
        cursor.execute("SHOW statement_timeout")
        statement_timeout = cursor.fetchone()[0]
        cursor.execute("SET lock_timeout = 0")
        cursor.execute("SET statement_timeout = 0")
        try:
            cursor.execute(sql)
        finally:
            cursor.execute("SELECT set_config('lock_timeout', %s, false)", [lock_timeout])
            cursor.execute("SELECT set_config('statement_timeout', %s, false)", [statement_timeout])


class AddIndexConcurrentlySafely(AddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY that drops an INVALID leftover first and skips a valid one."""

    def database_forwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: ProjectState, to_state: ProjectState
    ) -> None:
        self._ensure_not_in_transaction(schema_editor)
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        state = index_validity(schema_editor, self.index.name)
        if state is True:
            return
        quoted = schema_editor.quote_name(self.index.name)
        if state is False:
            _without_timeouts(schema_editor, f"DROP INDEX CONCURRENTLY IF EXISTS {quoted}")
        statement = self.index.create_sql(model, schema_editor, concurrently=True)
        _without_timeouts(schema_editor, str(statement))

    def database_backwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: ProjectState, to_state: ProjectState
    ) -> None:
        self._ensure_not_in_transaction(schema_editor)
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            quoted = schema_editor.quote_name(self.index.name)
            _without_timeouts(schema_editor, f"DROP INDEX CONCURRENTLY IF EXISTS {quoted}")

    def describe(self) -> str:
        return f"Create index {self.index.name} concurrently (re-runnable) on {self.model_name}"
