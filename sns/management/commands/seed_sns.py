"""`manage.py seed_sns --scale demo|small|full`: scheduled posts spread over the existing users.

Rows are streamed into one `COPY ... FROM STDIN` on the primary while they are generated, so
Python builds the next rows while PostgreSQL stores the previous ones. Statuses follow the
state machine (API.md): published posts have `published_at` and attempts >= 1, scheduled ones
are due in the future (a few are past-due retries waiting for their backoff), failed ones say
why in `last_error`, publishing ones hold a claim token and a lease.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from platform_core.models import User
from platform_core.seeding import CopyRowStream
from sns.models import SNSPost

POSTS_BY_SCALE = {"demo": 30, "small": 10_000, "full": 1_000_000}
COLUMNS = (
    "user_id",
    "platform",
    "content",
    "status",
    "scheduled_at",
    "next_attempt_at",
    "attempts",
    "max_attempts",
    "last_error",
    "last_error_at",
    "claim_token",
    "claimed_at",
    "lease_expires_at",
    "call_started_at",
    "published_at",
    "external_id",
    "idempotency_key",
    "created_at",
)
NULL = "\\N"
MAX_ATTEMPTS = 5
DAY = 86_400.0
# Status mix, cycled so even 30 demo rows hold every status: 11 published, 5 scheduled,
# 2 cancelled, 1 failed, 1 publishing in every 20 rows.
STATUS_CYCLE = ("published",) * 11 + ("scheduled",) * 5 + ("cancelled",) * 2 + ("failed",) + ("publishing",)
PLATFORMS = tuple(SNSPost.Platform.values)
# No tabs, newlines or backslashes: the text goes into COPY's text format unescaped.
CONTENTS = (
    "New menu drop this weekend: seasonal kimchi jjigae with a twist.",
    "Behind the scenes at our kitchen studio. Who wants a tour?",
    "Thank you for 10k followers! A giveaway starts tomorrow.",
    "Our chef's tip of the week: rest your steak as long as you cooked it.",
    "Review campaign open: try our new skincare line and tell us honestly.",
    "Live Q&A on Friday at 8 pm KST. Drop your questions below.",
    "Flash sale: 20% off private dinners booked before Sunday.",
    "Meet the team: Minji has plated over 3,000 tasting menus.",
)
TRANSIENT_ERRORS = ("HTTP 503 from the platform", "HTTP 429: rate limited", "connection reset by peer")
FINAL_ERRORS = (
    "HTTP 400: content rejected by the platform",
    "HTTP 401: account token revoked",
    "outcome unknown: the worker stopped during the publish call",
)
PROGRESS_EVERY = 100_000
KEY_BLOCK = 4_096
# Hex digit -> the same low two bits under the RFC 4122 variant (10xx).
UUID_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


class Command(BaseCommand):
    help = "Create scheduled SNS posts for the existing users (fast: COPY on the primary)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scale", choices=list(POSTS_BY_SCALE), default="demo")
        parser.add_argument("--random-seed", type=int, default=None, help="repeatable data for a given seed")

    def handle(self, *args: Any, scale: str, random_seed: int | None = None, **options: Any) -> None:
        started = time.monotonic()
        total = POSTS_BY_SCALE[scale]
        # The users may have been created a moment ago: read them where they were written.
        user_ids = list(User.objects.using(DEFAULT_DB_ALIAS).order_by("pk").values_list("pk", flat=True))
        if not user_ids:
            raise CommandError("No users exist; run manage.py seed first.")
        self.stdout.write(f"seed_sns: {total:,} posts over {len(user_ids):,} users ({scale} scale)")
        rows = self._rows(total, user_ids, rng=random.Random(random_seed), started=started)
        connection = connections[DEFAULT_DB_ALIAS]
        table = connection.ops.quote_name(SNSPost._meta.db_table)
        sql = f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN"
        with transaction.atomic(using=DEFAULT_DB_ALIAS), connection.cursor() as cursor:
            # A million rows outlast the per-statement timeout that protects requests.
            cursor.execute("SET LOCAL statement_timeout = 0")
            cursor.copy_expert(sql, CopyRowStream(rows))
        copied = time.monotonic() - started
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {table}")
        elapsed = time.monotonic() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"seed_sns: {total:,} posts in {elapsed:.1f}s (copy {copied:.1f}s, analyze {elapsed - copied:.1f}s, "
                f"{total / max(elapsed, 1e-9):,.0f} rows/s)"
            )
        )

    def _rows(self, total: int, user_ids: list[int], *, rng: random.Random, started: float) -> Iterator[str]:
        # Hot loop for a million rows: C-level random() instead of choice()/uniform(), timestamps
        # formatted from a per-minute cache, idempotency keys cut from one os.urandom() block.
        # Rows come user by user (an even share each): the user indexes and the foreign-key
        # checks then touch neighbouring pages, which makes the COPY about a fifth faster.
        rand = rng.random
        base = int(datetime.now(UTC).timestamp())
        minutes: dict[int, str] = {}

        def at(offset_seconds: float) -> str:
            minute, second = divmod(base + int(offset_seconds), 60)
            prefix = minutes.get(minute)
            if prefix is None:
                prefix = minutes[minute] = datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%d %H:%M:")
            return f"{prefix}{second:02d}+00"

        def pick(items: Sequence[Any]) -> Any:
            return items[int(rand() * len(items))]

        n_users, n_platforms, n_contents = len(user_ids), len(PLATFORMS), len(CONTENTS)
        keys = ""
        for i in range(total):
            if i % KEY_BLOCK == 0:
                keys = os.urandom(16 * KEY_BLOCK).hex()
            status = STATUS_CYCLE[i % len(STATUS_CYCLE)]
            platform = PLATFORMS[int(rand() * n_platforms)]
            attempts = 0
            last_error = last_error_at = claim_token = claimed_at = lease = published_at = NULL
            external_id = ""
            if status == "published":
                scheduled = -60 - rand() * 180 * DAY
                created = scheduled - 60 - rand() * 30 * DAY
                attempts = 1 if rand() < 0.85 else 2 + int(rand() * 2)
                next_attempt = scheduled + (attempts - 1) * 30
                published_at = at(next_attempt + 1 + rand() * 20)
                external_id = f"{platform}-{i + 1}"
            elif status == "scheduled":
                if rand() < 0.9:
                    scheduled = 60 + rand() * 60 * DAY
                    created = -rand() * 10 * DAY
                    next_attempt = scheduled
                else:  # a retry waiting for its backoff: due in the past, next attempt ahead
                    scheduled = -60 - rand() * 3_600
                    created = scheduled - 60 - rand() * 7 * DAY
                    attempts = 1 + int(rand() * (MAX_ATTEMPTS - 1))
                    next_attempt = 10 + rand() * 600
                    last_error = f"{pick(TRANSIENT_ERRORS)} (attempt {attempts}/{MAX_ATTEMPTS})"
                    last_error_at = at(-rand() * 60)
            elif status == "failed":
                scheduled = -3_600 - rand() * 90 * DAY
                created = scheduled - 60 - rand() * 30 * DAY
                if rand() < 0.5:
                    attempts = MAX_ATTEMPTS
                    last_error = f"{pick(TRANSIENT_ERRORS)} (attempt {attempts}/{MAX_ATTEMPTS})"
                else:
                    attempts = 1
                    last_error = pick(FINAL_ERRORS)
                next_attempt = scheduled + (attempts - 1) * 30
                last_error_at = at(next_attempt + 1 + rand() * 30)
            elif status == "cancelled":
                scheduled = -90 * DAY + rand() * 120 * DAY
                created = min(scheduled, 0.0) - 60 - rand() * 10 * DAY
                next_attempt = scheduled
            else:  # publishing: claimed by the dispatcher, the publisher not called yet
                scheduled = -rand() * 120
                created = scheduled - 60 - rand() * 3 * DAY
                next_attempt = scheduled
                claim_token = str(uuid.uuid4())
                claimed = -rand() * 60
                claimed_at, lease = at(claimed), at(claimed + 300)
            h = keys[(i % KEY_BLOCK) * 32 : (i % KEY_BLOCK + 1) * 32]
            # Random bits with the version (4) and variant (10xx) set: a uuid4, as PostgreSQL reads it.
            key = f"{h[:12]}4{h[13:16]}{UUID_VARIANT[h[16]]}{h[17:]}"
            yield (
                f"{user_ids[i * n_users // total]}\t{platform}\t{CONTENTS[int(rand() * n_contents)]} #{i + 1}\t"
                f"{status}\t{at(scheduled)}\t{at(next_attempt)}\t{attempts}\t{MAX_ATTEMPTS}\t{last_error}\t"
                f"{last_error_at}\t{claim_token}\t{claimed_at}\t{lease}\t{NULL}\t{published_at}\t{external_id}\t"
                f"{key}\t{at(created)}\n"
            )
            if (i + 1) % PROGRESS_EVERY == 0 and i + 1 < total:
                self.stdout.write(f"seed_sns: {i + 1:,}/{total:,} posts ({time.monotonic() - started:.1f}s)")
