"""`manage.py cache_bump chefs reviews` / `--all`: invalidate response-cache namespaces now.

For writes Django can't see (COPY seeds, raw SQL, another program): bumps each namespace's
generation with the primary's current WAL position, exactly like a write's after-commit bump.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from softfactory import cache


class Command(BaseCommand):
    help = "Bump response-cache namespace generations (after writes Django can't see). See docs/CACHING.md."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("namespaces", nargs="*", help="namespaces to bump, e.g. chefs reviews campaigns")
        parser.add_argument("--all", action="store_true", help="bump every known namespace")

    def handle(self, *args: Any, **options: Any) -> None:
        known = cache.known_namespaces()
        names: list[str] = known if options["all"] else list(dict.fromkeys(options["namespaces"]))
        if not names:
            raise CommandError(f"Name the namespaces to bump, or --all. Known: {', '.join(known)}.")
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise CommandError(f"Unknown namespace(s): {', '.join(unknown)}. Known: {', '.join(known)}.")
        failed = [name for name in names if not cache.bump_now(name)]
        bumped = [name for name in names if name not in failed]
        if bumped:
            self.stdout.write(f"bumped: {', '.join(bumped)}")
        if failed:
            raise CommandError(f"Could not bump {', '.join(failed)} (Redis or the primary unreachable); retry.")
