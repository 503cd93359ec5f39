"""`manage.py seed --scale demo|small|full`: users with API tokens, then every domain's data.

Users share one password hash computed once, so seeding does no per-user hashing, and each
gets an API token whose raw key is written to var/seed_tokens.txt (the benchmark logs in with
them; only hashes are stored). Domain apps seed themselves (`seed_coocook`, `seed_review`,
`seed_sns`), called by name so platform_core imports none of them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, transaction

from platform_core.models import AuthToken, User, hash_token_key

USERS_BY_SCALE = {"demo": 20, "small": 1_000, "full": 10_000}
DOMAIN_SEEDERS = ("seed_coocook", "seed_review", "seed_sns")
DEMO_STAFF_EMAIL = "staff@softfactory.local"
DEMO_PASSWORD = "softfactory-demo"  # noqa: S105 - the published login of the demo data
BATCH = 5_000


class Command(BaseCommand):
    help = "Create realistic data at a chosen scale: users with API tokens, chefs, bookings, campaigns, posts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scale", choices=sorted(USERS_BY_SCALE), default="demo")
        parser.add_argument("--tokens-file", default=str(Path(settings.BASE_DIR) / "var" / "seed_tokens.txt"))
        parser.add_argument("--only-users", action="store_true", help="skip the domain seeders")

    def handle(self, *args: Any, scale: str, tokens_file: str, only_users: bool, **options: Any) -> None:
        started = time.monotonic()
        if User.objects.filter(email__startswith="seed-user-").exists():
            self.stdout.write("seed: users exist already; reusing them")
        else:
            self._users(USERS_BY_SCALE[scale], Path(tokens_file))
        self._demo_staff()
        if not only_users:
            available = get_commands()
            for seeder in DOMAIN_SEEDERS:
                if seeder in available:
                    call_command(seeder, scale=scale, stdout=self.stdout, stderr=self.stderr)
            # COPY sends no signals: invalidate every cached public read explicitly.
            call_command("cache_bump", all=True, stdout=self.stdout, stderr=self.stderr)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        self.stdout.write(self.style.SUCCESS(f"seed: {scale} scale done in {time.monotonic() - started:.1f}s"))

    def _users(self, count: int, tokens_file: Path) -> None:
        password = make_password(DEMO_PASSWORD)  # one hash for every seeded user
        keys: list[str] = []
        for start in range(0, count, BATCH):
            size = min(BATCH, count - start)
            with transaction.atomic():
                users = User.objects.bulk_create(
                    User(email=f"seed-user-{start + i}@example.com", name=f"Seed User {start + i}", password=password)
                    for i in range(size)
                )
                batch_keys = [AuthToken.new_key() for _ in users]
                AuthToken.objects.bulk_create(
                    AuthToken(user=user, key_hash=hash_token_key(key))
                    for user, key in zip(users, batch_keys, strict=True)
                )
            keys += batch_keys
            self.stdout.write(f"seed: users {start + size}/{count}")
        tokens_file.parent.mkdir(parents=True, exist_ok=True)
        tokens_file.write_text("\n".join(keys) + "\n")
        self.stdout.write(f"seed: {count} API tokens written to {tokens_file}")

    def _demo_staff(self) -> None:
        if not User.objects.filter(email__iexact=DEMO_STAFF_EMAIL).exists():
            User.objects.create_superuser(DEMO_STAFF_EMAIL, DEMO_PASSWORD, name="Demo Staff")
        self.stdout.write(f"seed: staff login {DEMO_STAFF_EMAIL} / {DEMO_PASSWORD}")
