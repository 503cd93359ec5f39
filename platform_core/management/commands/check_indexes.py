"""`manage.py check_indexes`: list INVALID indexes and fail when a failed build left one behind."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections

from softfactory.migration_ops import invalid_indexes


class Command(BaseCommand):
    help = (
        "Lists INVALID indexes (left by a failed CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY) "
        "and exits non-zero when any exists. Builds still in progress are listed but do not fail."
    )
    # Reads the catalog only; a deploy gate should not depend on unrelated system checks.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            choices=tuple(connections),
            help='The database alias to check (default "default").',
        )

    def handle(self, *args: Any, **options: Any) -> None:
        connection = connections[options["database"]]
        database = connection.settings_dict["NAME"]
        found = invalid_indexes(connection)
        leftovers = [index for index in found if index.builder_pid is None]
        for index in found:
            where = f"{index.schema}.{index.name} on {index.schema}.{index.table}"
            if index.builder_pid is None:
                self.stdout.write(f"INVALID {where}")
            else:
                self.stdout.write(f"building {where} (pid {index.builder_pid}, still in progress)")
        if leftovers:
            names = ", ".join(f"{index.schema}.{index.name}" for index in leftovers)
            raise CommandError(
                f"{len(leftovers)} INVALID index(es) in database {database!r}: {names}. PostgreSQL does not use "
                "them but still maintains them on every write. Run `manage.py migrate` again "
                "(AddIndexConcurrentlySafely rebuilds its own), or DROP INDEX CONCURRENTLY and recreate "
                "(docs/MIGRATIONS.md)."
            )
        if options["verbosity"] >= 1:
            self.stdout.write(f"No INVALID indexes in database {database!r}.")
