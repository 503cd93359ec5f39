"""`manage.py seed_coocook --scale demo|small|full`: chefs, bookings and reviews for existing users.

Rows are generated in Python and loaded with COPY on the primary in batches (progress is
printed per batch, memory stays flat), all in one transaction with the tables' foreign keys
dropped and re-added around the load. Bookings never overlap: each chef's bookings sit on
distinct days, within the day. Reviews are inserted server-side for a share of completed
bookings, and chef `rating`/`rating_total`/`review_count` are computed from them, so the stored
aggregates match the reviews exactly. ANALYZE runs at the end; the timing is printed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import random
import time
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections, transaction
from django.utils import timezone

from platform_core.models import User

SCALES = {"demo": (30, 200), "small": (1_000, 10_000), "full": (100_000, 1_000_000)}
BATCH = 100_000
REVIEW_SHARE = 0.3
DB = "default"  # the primary: COPY is a write
BOOKING_TABLE = "coocook_booking"
CHECKED_TABLES = ("coocook_chef", BOOKING_TABLE, "coocook_review")
REINDEXED_TABLES = (BOOKING_TABLE, "coocook_review")

FIRST_NAMES = [
    "Min-jun",
    "Seo-yeon",
    "Ji-ho",
    "Ha-eun",
    "Do-yun",
    "Ji-woo",
    "Eun-ji",
    "Hyun-woo",
    "Sofia",
    "Luca",
    "Amelie",
    "Hiroshi",
    "Yuki",
    "Camille",
    "Mateo",
    "Priya",
    "Arjun",
    "Chiara",
    "Diego",
    "Ingrid",
    "Omar",
    "Leila",
    "Tomas",
    "Ana",
    "Kenji",
    "Mei",
    "Noah",
    "Emma",
]
LAST_NAMES = [
    "Kim",
    "Lee",
    "Park",
    "Choi",
    "Jung",
    "Kang",
    "Cho",
    "Yoon",
    "Jang",
    "Lim",
    "Rossi",
    "Dubois",
    "Tanaka",
    "Garcia",
    "Sato",
    "Martin",
    "Silva",
    "Singh",
]
CUISINES = ("korean", "japanese", "italian", "french", "chinese", "thai", "indian", "mexican", "vegan", "spanish")
BIOS = (
    "Seasonal tasting menus cooked in your kitchen.",
    "Family recipes, market produce, no shortcuts.",
    "Trained in Seoul and Lyon; loves fermentation.",
    "Private dinners for two to twenty guests.",
    "Street-food classics, plated for the table.",
)
NOTES = ("", "", "", "", "Vegetarian menu, please.", "One guest has a nut allergy.", "Birthday dinner!")
OPENING_HOURS = range(10, 21)  # local start hours; with up to 4 hours, every booking ends by midnight
DAY_STEP = 2  # slot k of a chef is on day 2k or 2k+1: distinct days never overlap
PAST_SHARE = 0.6


class Command(BaseCommand):
    help = "Create chefs, bookings and reviews (for existing users) at a chosen scale, fast (COPY)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scale", choices=sorted(SCALES), default="demo")
        parser.add_argument("--seed", type=int, default=None, help="random seed, for repeatable data")

    def handle(self, *args: Any, scale: str, seed: int | None = None, **options: Any) -> None:
        started = time.monotonic()
        chef_count, booking_count = SCALES[scale]
        user_ids = list(User.objects.using(DB).order_by("pk").values_list("pk", flat=True))
        if not user_ids:
            raise CommandError("There are no users to book with: run manage.py seed first.")
        rng = random.Random(seed)
        # One transaction: constraints and indexes are rebuilt around the load (_deferred_checks),
        # and nothing is left half-loaded if the command fails.
        with transaction.atomic(using=DB), self._deferred_checks():
            chefs = self._chefs(chef_count, user_ids, rng)
            self._bookings(booking_count, chefs, user_ids, rng)
            reviews = self._reviews(min(chefs)[0], max(chefs)[0])
        with connections[DB].cursor() as cursor:
            cursor.execute("ANALYZE coocook_chef, coocook_booking, coocook_review")
        self.stdout.write(
            self.style.SUCCESS(
                f"seed_coocook: {scale} scale done in {time.monotonic() - started:.1f}s "
                f"({chef_count} chefs, {booking_count} bookings, {reviews} reviews)"
            )
        )

    # --- loading ------------------------------------------------------------------------

    def _copy(self, table: str, columns: tuple[str, ...], lines: list[str]) -> None:
        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with connections[DB].cursor() as cursor:
            cursor.copy_expert(sql, io.StringIO("".join(lines)))

    def _progress(self, what: str, done: int, total: int, started: float) -> None:
        rate = done / max(time.monotonic() - started, 1e-6)
        self.stdout.write(f"seed_coocook: {what} {done:,}/{total:,} ({rate:,.0f} rows/s)")

    @contextlib.contextmanager
    def _deferred_checks(self) -> Iterator[None]:
        """Drop foreign keys, the overlap constraint and secondary indexes; rebuild them after the load.

        Checked and indexed row by row, a million bookings take minutes (each foreign key check
        locks the referenced row; each GiST insert searches for overlaps); rebuilt once over the
        loaded table they take seconds, and the same checks still run, on every row. All of it
        happens inside the caller's transaction: no other session ever sees the tables without
        their constraints (it waits on the table locks instead, so seed a quiet database), and a
        failed check rolls the whole load back.
        """
        with connections[DB].cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '30s'")
            cursor.execute("SET LOCAL statement_timeout = 0")  # the rebuilds outlast a request's limit
            cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
            cursor.execute(
                """
                SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
                FROM pg_constraint
                WHERE conrelid = ANY(%s::regclass[]) AND (contype = 'f' OR (contype = 'x' AND conrelid = %s::regclass))
                ORDER BY contype DESC, conname
                """,
                [list(CHECKED_TABLES), BOOKING_TABLE],
            )
            constraints = cursor.fetchall()  # the overlap constraint ('x') first, then foreign keys
            cursor.execute(
                """
                SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
                FROM pg_index i
                WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary AND NOT i.indisunique
                  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
                """,
                [list(REINDEXED_TABLES)],
            )
            indexes = cursor.fetchall()
            for table, name, _ in constraints:
                cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            for name, _ in indexes:
                cursor.execute(f"DROP INDEX {name}")
        yield
        started = time.monotonic()
        with connections[DB].cursor() as cursor:
            for _, definition in indexes:
                cursor.execute(definition)
            self.stdout.write(f"seed_coocook: {len(indexes)} indexes rebuilt in {time.monotonic() - started:.1f}s")
            for table, name, definition in constraints:
                step = time.monotonic()
                cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
                self.stdout.write(f"seed_coocook: {name} checked in {time.monotonic() - step:.1f}s")

    # --- chefs --------------------------------------------------------------------------

    def _chefs(self, count: int, user_ids: list[int], rng: random.Random) -> list[tuple[int, int, str]]:
        """Insert `count` chefs; returns (id, whole hourly rate, currency) for each."""
        started = time.monotonic()
        with connections[DB].cursor() as cursor:
            # Ids reserved up front, so bookings can refer to them without reading the chefs back.
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence('coocook_chef', 'id')) FROM generate_series(1, %s)", [count]
            )
            ids = [row[0] for row in cursor.fetchall()]
        now = timezone.now()
        chefs: list[tuple[int, int, str]] = []
        lines: list[str] = []
        columns = (
            "id",
            "owner_id",
            "name",
            "cuisine_type",
            "bio",
            "hourly_rate",
            "currency",
            "rating",
            "rating_total",
            "review_count",
            "is_active",
            "created_at",
        )
        for chef_id in ids:
            if rng.random() < 0.05:
                currency, rate = "USD", rng.randrange(40, 300, 5)
            else:
                currency, rate = "KRW", rng.randrange(30_000, 250_000, 5_000)
            owner = str(rng.choice(user_ids)) if rng.random() < 0.05 else r"\N"
            created = now - dt.timedelta(days=rng.randrange(1, 730), seconds=rng.randrange(86_400))
            lines.append(
                f"{chef_id}\t{owner}\t{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}\t{rng.choice(CUISINES)}\t"
                f"{rng.choice(BIOS)}\t{rate}.00\t{currency}\t0.00\t0\t0\t{'t' if rng.random() < 0.95 else 'f'}\t"
                f"{created.isoformat()}\n"
            )
            chefs.append((chef_id, rate, currency))
            if len(lines) == BATCH:
                self._copy("coocook_chef", columns, lines)
                lines = []
                self._progress("chefs", len(chefs), count, started)
        if lines:
            self._copy("coocook_chef", columns, lines)
        self._progress("chefs", len(chefs), count, started)
        return chefs

    # --- bookings -----------------------------------------------------------------------

    def _bookings(self, count: int, chefs: list[tuple[int, int, str]], user_ids: list[int], rng: random.Random) -> None:
        started = time.monotonic()
        columns = (
            "user_id",
            "chef_id",
            "booking_date",
            "start_time",
            "duration_hours",
            "guests",
            "notes",
            "status",
            "total_price",
            "currency",
            "period",
            "created_at",
        )
        done = 0
        lines: list[str] = []
        for line in self._booking_lines(count, chefs, user_ids, rng):
            lines.append(line)
            if len(lines) == BATCH:
                rng.shuffle(lines)
                self._copy("coocook_booking", columns, lines)
                done += len(lines)
                lines = []
                self._progress("bookings", done, count, started)
        if lines:
            rng.shuffle(lines)
            self._copy("coocook_booking", columns, lines)
            done += len(lines)
        self._progress("bookings", done, count, started)

    def _booking_lines(
        self, count: int, chefs: list[tuple[int, int, str]], user_ids: list[int], rng: random.Random
    ) -> Iterator[str]:
        """COPY lines, chef by chef."""
        zone = ZoneInfo(str(settings.BOOKING_TIME_ZONE))
        today = timezone.now().astimezone(zone).date()
        base, extra = divmod(count, len(chefs))
        most = base + (1 if extra else 0)
        first_day = -int(most * DAY_STEP * PAST_SHARE)
        # (day, hour, hours) -> the slot's text fields; a few hundred distinct slots in all.
        slots: dict[tuple[int, int, int], tuple[str, str, str, str, bool]] = {}

        def slot(day: int, hour: int, hours: int) -> tuple[str, str, str, str, bool]:
            key = (day, hour, hours)
            if key not in slots:
                date = today + dt.timedelta(days=day if day < 0 else day + 1)  # nothing today
                start = dt.datetime.combine(date, dt.time(hour), tzinfo=zone).astimezone(dt.UTC)
                end = start + dt.timedelta(hours=hours)
                slots[key] = (
                    date.isoformat(),
                    f"{hour:02d}:00:00",
                    f"[{start.isoformat()},{end.isoformat()})",
                    (start - dt.timedelta(days=10)).isoformat(),
                    day < 0,
                )
            return slots[key]

        random_ = rng.random
        users = len(user_ids)
        hours_choices = len(OPENING_HOURS)
        # Chefs in random order, and each batch shuffled: the GiST index behind the overlap
        # constraint builds far faster (better page splits) from a heap not sorted by chef.
        order = list(range(len(chefs)))
        rng.shuffle(order)
        for index in order:
            chef_id, rate, currency = chefs[index]
            for k in range(base + (1 if index < extra else 0)):
                day = first_day + k * DAY_STEP + (1 if random_() < 0.5 else 0)
                hours = 1 + int(random_() * 4)
                date, start_time, period, created, past = slot(
                    day, OPENING_HOURS[0] + int(random_() * hours_choices), hours
                )
                cancelled = random_() < (0.1 if past else 0.08)
                status = "cancelled" if cancelled else ("completed" if past else "confirmed")
                user_id = user_ids[int(random_() * users)]
                guests = 1 + int(random_() * 8)
                notes = NOTES[int(random_() * len(NOTES))]
                yield (
                    f"{user_id}\t{chef_id}\t{date}\t{start_time}\t{hours}\t{guests}\t{notes}\t{status}\t"
                    f"{rate * hours}.00\t{currency}\t{period}\t{created}\n"
                )

    # --- reviews ------------------------------------------------------------------------

    def _reviews(self, first_chef_id: int, last_chef_id: int) -> int:
        """Review a share of the new chefs' completed bookings; then make each chef's aggregates match."""
        started = time.monotonic()
        with connections[DB].cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO coocook_review (booking_id, chef_id, user_id, rating, comment, created_at)
                SELECT b.id, b.chef_id, b.user_id,
                       (ARRAY[5, 5, 5, 4, 4, 4, 3, 3, 2, 1])[1 + floor(random() * 10)::int],
                       (ARRAY['Wonderful evening.', 'Great food, lovely chef.', 'Good, a bit slow.',
                              'Would book again.', ''])[1 + floor(random() * 5)::int],
                       least(upper(b.period) + random() * interval '3 days', now())
                FROM coocook_booking b
                WHERE b.chef_id BETWEEN %s AND %s AND b.status = 'completed' AND random() < %s
                ON CONFLICT (booking_id) DO NOTHING
                """,
                [first_chef_id, last_chef_id, REVIEW_SHARE],
            )
            reviews = cursor.rowcount
            cursor.execute(
                """
                UPDATE coocook_chef c
                SET rating_total = s.total, review_count = s.reviews, rating = round(s.total::numeric / s.reviews, 2)
                FROM (
                    SELECT chef_id, sum(rating) AS total, count(*) AS reviews
                    FROM coocook_review WHERE chef_id BETWEEN %s AND %s GROUP BY chef_id
                ) s
                WHERE c.id = s.chef_id
                """,
                [first_chef_id, last_chef_id],
            )
        self.stdout.write(f"seed_coocook: reviews {reviews:,} in {time.monotonic() - started:.1f}s")
        return int(reviews)
