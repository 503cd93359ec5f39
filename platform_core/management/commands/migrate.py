"""Django's migrate, run alone per database with a session lock_timeout and statement_timeout.

The timeouts are set on the connection's session before any migration runs, so they cover
everything migrate sends — schema editor DDL, RunSQL and RunPython alike (a per-operation
setting would miss the last two). A statement that queues for a strong lock behind an open
transaction fails with LockNotAvailable after MIGRATION_LOCK_TIMEOUT instead of stalling
every query queued behind it; re-run migrate when the table is quieter. Concurrent index
builds (softfactory.migration_ops) clear both for their own statements. docs/MIGRATIONS.md.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.core.management.commands.migrate import Command as DjangoMigrateCommand
from django.db import connections

from softfactory.migration_ops import migration_session, validate_duration


class Command(DjangoMigrateCommand):
    help = (
        f"{DjangoMigrateCommand.help} Runs with a session lock_timeout/statement_timeout "
        "(MIGRATION_LOCK_TIMEOUT, MIGRATION_STATEMENT_TIMEOUT) and one migrate per database at a time."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--lock-timeout",
            default=None,
            help="Session lock_timeout for this run (a PostgreSQL duration; default MIGRATION_LOCK_TIMEOUT).",
        )
        parser.add_argument(
            "--statement-timeout",
            default=None,
            help="Session statement_timeout for this run (default MIGRATION_STATEMENT_TIMEOUT).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            lock_timeout = validate_duration(
                "--lock-timeout" if options["lock_timeout"] else "MIGRATION_LOCK_TIMEOUT",
                options["lock_timeout"] or settings.MIGRATION_LOCK_TIMEOUT,
            )
            statement_timeout = validate_duration(
                "--statement-timeout" if options["statement_timeout"] else "MIGRATION_STATEMENT_TIMEOUT",
                options["statement_timeout"] or settings.MIGRATION_STATEMENT_TIMEOUT,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        connection = connections[options["database"]]
        if connection.settings_dict.get("ROLE") == "replica":
            raise CommandError(f"{options['database']} is a replica: migrate the primary, replication does the rest.")
        if options["verbosity"] >= 2:
            self.stdout.write(f"Session lock_timeout={lock_timeout}, statement_timeout={statement_timeout}")
        with migration_session(
            connection,
            lock_timeout=lock_timeout,
            statement_timeout=statement_timeout,
            on_wait=self.stdout.write,
        ):
            super().handle(*args, **options)
