"""`manage.py seed_review --scale demo|small|full`: review campaigns and applications.

Campaign ids are reserved from the table's sequence first, so campaigns and their
applications both stream into `COPY ... FROM STDIN` on the primary, in one transaction.
Every campaign's `applicant_count` equals its pending plus approved applications, and never
exceeds `max_reviewers`; active and draft campaigns end in the future, closed ones in the past.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from platform_core.models import User
from platform_core.seeding import CopyRowStream
from review.models import Application, Campaign

CAMPAIGNS_BY_SCALE = {"demo": 20, "small": 1_000, "full": 100_000}
CAMPAIGN_COLUMNS = (
    "id",
    "title",
    "brand",
    "category",
    "description",
    "status",
    "reward",
    "currency",
    "max_reviewers",
    "applicant_count",
    "deadline",
    "created_at",
)
APPLICATION_COLUMNS = ("campaign_id", "user_id", "message", "status", "created_at", "decided_at")
NULL = "\\N"
DAY = 86_400.0
# 8 active, 1 draft, 1 closed in every 10 campaigns, so even the demo holds every status.
STATUS_CYCLE = ("active",) * 4 + ("draft",) + ("active",) * 4 + ("closed",)
# No tabs, newlines or backslashes below: the text goes into COPY's text format unescaped.
PRODUCTS = {
    "beauty": ("Green Tea Serum", "Cushion Foundation", "Sheet Mask Set", "Vitamin C Toner", "Lip Tint"),
    "food": ("Kimchi Starter Kit", "Gochujang Trio", "Cold Brew Sampler", "Protein Bars", "Tteokbokki Meal Kit"),
    "restaurant": ("Chef's Tasting Menu", "Weekend Brunch", "Omakase Dinner", "Korean BBQ Set", "Vegan Course"),
    "fashion": ("Linen Shirt", "Everyday Sneakers", "Rain Jacket", "Wool Scarf", "Denim Tote"),
    "tech": ("Wireless Earbuds", "Smart Watch", "Mechanical Keyboard", "Portable Projector", "Power Bank"),
    "home": ("Air Purifier", "Robot Vacuum", "Linen Bedding", "Aroma Diffuser", "Rice Cooker"),
    "travel": ("Jeju Hotel Stay", "Busan Food Tour", "Carry-on Suitcase", "Travel Pillow", "City Pass"),
    "kids": ("Picture Book Bundle", "Wooden Blocks", "Kids Sunscreen", "Learning Tablet", "Snack Box"),
    "pets": ("Grain-free Kibble", "Cat Tower", "Dog Harness", "Pet Camera", "Dental Chews"),
    "fitness": ("Yoga Mat", "Home Gym Bands", "Pilates Class Pass", "Running Vest", "Smart Scale"),
}
BRANDS = {
    "beauty": ("Innisfree", "Laneige", "Sulwhasoo", "COSRX", "Etude", "Mamonde"),
    "food": ("CJ CheilJedang", "Pulmuone", "Nongshim", "Ottogi", "Bibigo", "Binggrae"),
    "restaurant": ("Mingles", "Jungsik", "Onjium", "Soigne", "Gaon", "Bicena"),
    "fashion": ("Musinsa Standard", "Thisisneverthat", "Ader Error", "Covernat", "Kirsh", "Mardi Mercredi"),
    "tech": ("Samsung", "LG", "Xiaomi", "Anker", "Logitech", "Sony"),
    "home": ("Coway", "Cuckoo", "Dyson", "Philips", "Muji", "Jaju"),
    "travel": ("Yanolja", "Lotte Hotels", "Korean Air", "Samsonite", "MyRealTrip", "Klook"),
    "kids": ("Pinkfong", "Lego", "Aprica", "Hanssem Kids", "Boryeong", "Maeil"),
    "pets": ("Royal Canin", "Fitpet", "Bow Wow", "Petkit", "Natural Core", "Catit"),
    "fitness": ("Nike", "Adidas", "Lululemon", "Xexymix", "Andar", "Garmin"),
}
CATEGORIES = tuple(PRODUCTS)
PITCHES = (
    "Try it for two weeks and post an honest review with three photos.",
    "Share a short video review on your channel and tag the brand.",
    "Write a blog review of at least 800 characters with your own pictures.",
    "Use it daily for a month, then tell your followers what changed.",
    "Visit, enjoy, and review the full experience, good and bad.",
)
MESSAGES = (
    "I have reviewed similar products for two years and would love to try this.",
    "My followers ask about this category every week.",
    "Long-time customer, happy to write a detailed review with photos.",
    "I post honest, in-depth reviews on my blog and Instagram.",
    "",
)
MAX_REVIEWERS_CHOICES = (5, 10, 10, 20, 20, 30, 50, 100)
PROGRESS_EVERY = 10_000


class Command(BaseCommand):
    help = "Create review campaigns and applications for the existing users (fast: COPY on the primary)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scale", choices=list(CAMPAIGNS_BY_SCALE), default="demo")
        parser.add_argument("--random-seed", type=int, default=None, help="repeatable data for a given seed")

    def handle(self, *args: Any, scale: str, random_seed: int | None = None, **options: Any) -> None:
        started = time.monotonic()
        total = CAMPAIGNS_BY_SCALE[scale]
        # The users may have been created a moment ago: read them where they were written.
        user_ids = list(
            User.objects.using(DEFAULT_DB_ALIAS).filter(is_active=True).order_by("pk").values_list("pk", flat=True)
        )
        if not user_ids:
            raise CommandError("No users exist; run manage.py seed first.")
        self.stdout.write(f"seed_review: {total:,} campaigns over {len(user_ids):,} users ({scale} scale)")
        connection = connections[DEFAULT_DB_ALIAS]
        campaigns = connection.ops.quote_name(Campaign._meta.db_table)
        applications = connection.ops.quote_name(Application._meta.db_table)
        application_rows: list[str] = []
        with transaction.atomic(using=DEFAULT_DB_ALIAS), connection.cursor() as cursor:
            # 100k campaigns and their applications outlast the per-statement timeout of requests.
            cursor.execute("SET LOCAL statement_timeout = 0")
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [Campaign._meta.db_table, total],
            )
            ids = [row[0] for row in cursor.fetchall()]
            rows = self._campaign_rows(ids, user_ids, application_rows, rng=random.Random(random_seed), started=started)
            cursor.copy_expert(f"COPY {campaigns} ({', '.join(CAMPAIGN_COLUMNS)}) FROM STDIN", CopyRowStream(rows))
            self.stdout.write(f"seed_review: {len(application_rows):,} applications")
            cursor.copy_expert(
                f"COPY {applications} ({', '.join(APPLICATION_COLUMNS)}) FROM STDIN",
                CopyRowStream(iter(application_rows)),
            )
        copied = time.monotonic() - started
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {campaigns}")
            cursor.execute(f"ANALYZE {applications}")
        elapsed = time.monotonic() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"seed_review: {total:,} campaigns and {len(application_rows):,} applications in {elapsed:.1f}s "
                f"(copy {copied:.1f}s, analyze {elapsed - copied:.1f}s)"
            )
        )

    def _campaign_rows(
        self,
        ids: list[int],
        user_ids: list[int],
        application_rows: list[str],
        *,
        rng: random.Random,
        started: float,
    ) -> Iterator[str]:
        """COPY lines of campaigns; their applications are appended to `application_rows`."""
        now = datetime.now(UTC)
        uniform, choice = rng.uniform, rng.choice

        def at(offset_seconds: float) -> str:
            return (now + timedelta(seconds=offset_seconds)).isoformat()

        total = len(ids)
        for i, campaign_id in enumerate(ids):
            status = STATUS_CYCLE[i % len(STATUS_CYCLE)]
            category = choice(CATEGORIES)
            brand, product = choice(BRANDS[category]), choice(PRODUCTS[category])
            title = f"{brand} {product} review #{i + 1}"
            description = f"{brand} is looking for reviewers of its {product}. {choice(PITCHES)}"
            if rng.random() < 0.9:
                currency, reward = "KRW", f"{rng.randrange(0, 300_001, 5_000)}.00"
            else:
                currency, reward = "USD", f"{rng.randrange(10, 201)}.{rng.randrange(0, 100, 50):02d}"
            max_reviewers = choice(MAX_REVIEWERS_CHOICES)
            if status == "closed":
                deadline = -uniform(3_600, 60 * DAY)
                created = deadline - uniform(7 * DAY, 45 * DAY)
            elif status == "draft":
                created = -uniform(0, 14 * DAY)
                deadline = uniform(14 * DAY, 90 * DAY)
            else:
                created = -uniform(0, 120 * DAY)
                deadline = uniform(3_600, 60 * DAY)
            applicant_count = 0
            if status != "draft" and rng.random() < 0.6:
                applicants = rng.sample(user_ids, rng.randint(1, min(max_reviewers, len(user_ids), 15)))
                latest = min(deadline, 0.0)
                for user_id in applicants:
                    applied = uniform(created, latest)
                    roll = rng.random()
                    if status == "closed":
                        app_status = "approved" if roll < 0.6 else "rejected"
                    else:
                        app_status = "pending" if roll < 0.6 else "approved" if roll < 0.85 else "rejected"
                    decided = NULL if app_status == "pending" else at(uniform(applied, latest))
                    applicant_count += app_status != "rejected"
                    application_rows.append(
                        f"{campaign_id}\t{user_id}\t{choice(MESSAGES)}\t{app_status}\t{at(applied)}\t{decided}\n"
                    )
            yield (
                f"{campaign_id}\t{title}\t{brand}\t{category}\t{description}\t{status}\t{reward}\t{currency}\t"
                f"{max_reviewers}\t{applicant_count}\t{at(deadline)}\t{at(created)}\n"
            )
            if (i + 1) % PROGRESS_EVERY == 0 and i + 1 < total:
                self.stdout.write(f"seed_review: {i + 1:,}/{total:,} campaigns ({time.monotonic() - started:.1f}s)")
