"""`manage.py recount_lists [--fix]`: check the stored list counts against COUNT(*) GROUP BY.

A stored-count model (coocook.ChefCount, review.CampaignCount) names the table it counts in
`counts_rows_of`; its primary-key columns are the grouping columns, named as in that table.
They are found through the app registry, so platform_core imports no domain app.
docs/runbooks/recount_lists.md says when to run it.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction

DB = DEFAULT_DB_ALIAS  # the triggers write the primary; --fix is a write


def stored_count_models() -> list[type[models.Model]]:
    """Every model that declares which table's rows it counts."""
    return [model for model in apps.get_models() if getattr(model, "counts_rows_of", None)]


def _quote(name: str) -> str:
    return connections[DB].ops.quote_name(name)


def _column(model: type[models.Model], name: str) -> str:
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or field.column is None:
        raise TypeError(f"{model._meta.label}.{name} is not a column")
    return _quote(field.column)


class CountedTable:
    """The SQL that compares, and rewrites, one stored-count table against the table it counts."""

    def __init__(self, model: type[models.Model]) -> None:
        source = apps.get_model(model.counts_rows_of)  # type: ignore[attr-defined]
        self.label = model._meta.label
        self.keys = [field.name for field in model._meta.pk_fields]
        self.counts = _quote(model._meta.db_table)
        self.source = _quote(source._meta.db_table)
        self.n = _column(model, "n")
        self.key_columns = ", ".join(_column(model, key) for key in self.keys)
        self.source_columns = ", ".join(_column(source, key) for key in self.keys)

    def differences_sql(self) -> str:
        """(keys..., stored, actual) for every key whose stored count is wrong; one snapshot, no lock."""
        return f"""
            SELECT {self.key_columns}, coalesce(stored.n, 0), coalesce(actual.n, 0)
            FROM (SELECT {self.key_columns}, {self.n} AS n FROM {self.counts}) AS stored
            FULL JOIN (
                SELECT {self.source_columns}, count(*) AS n FROM {self.source} GROUP BY {self.source_columns}
            ) AS actual ({self.key_columns}, n) USING ({self.key_columns})
            WHERE coalesce(stored.n, 0) <> coalesce(actual.n, 0)
            ORDER BY {self.key_columns}
        """  # noqa: S608 - identifiers come from model metadata and are quoted

    def rewrite_sql(self) -> list[str]:
        return [
            f"DELETE FROM {self.counts}",  # noqa: S608 - quoted identifiers
            f"INSERT INTO {self.counts} ({self.key_columns}, {self.n}) "  # noqa: S608
            f"SELECT {self.source_columns}, count(*) FROM {self.source} GROUP BY {self.source_columns}",
        ]


class Command(BaseCommand):
    help = (
        "Compares the stored list counts (kept by triggers) with COUNT(*) GROUP BY over the counted tables "
        "and exits non-zero when they differ; --fix rewrites them under a SHARE lock on the counted table."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--fix", action="store_true", help="rewrite the stored counts that differ")
        parser.add_argument(
            "--lock-timeout",
            default="5s",
            help="how long --fix waits for writers to let go of a counted table (PostgreSQL duration)",
        )

    def handle(self, *args: Any, fix: bool, lock_timeout: str, **options: Any) -> None:
        wrong = 0
        for model in stored_count_models():
            table = CountedTable(model)
            if fix:
                wrong += self._fix(table, lock_timeout)
            else:
                wrong += self._report(table, self._differences(table))
        if wrong and not fix:
            raise CommandError(
                f"{wrong} stored list count(s) differ from COUNT(*); run `manage.py recount_lists --fix`."
            )
        if options["verbosity"] >= 1:
            self.stdout.write(f"{wrong} stored list count(s) rewritten." if wrong else "Stored list counts are exact.")

    def _differences(self, table: CountedTable) -> list[tuple[Any, ...]]:
        with connections[DB].cursor() as cursor:
            cursor.execute(table.differences_sql())
            return list(cursor.fetchall())

    def _report(self, table: CountedTable, rows: list[tuple[Any, ...]]) -> int:
        for *key, stored, actual in rows:
            where = ", ".join(f"{name}={value!r}" for name, value in zip(table.keys, key, strict=True))
            self.stdout.write(f"{table.label} ({where}): stored {stored}, actual {actual}")
        return len(rows)

    def _fix(self, table: CountedTable, lock_timeout: str) -> int:
        with transaction.atomic(using=DB), connections[DB].cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [lock_timeout])
            # SHARE blocks writers (and so the triggers) until commit, and lets readers through.
            cursor.execute(f"LOCK TABLE {table.source} IN SHARE MODE")
            wrong = self._report(table, self._differences(table))
            if wrong:
                for sql in table.rewrite_sql():
                    cursor.execute(sql)
        return wrong
