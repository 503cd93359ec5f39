"""The benchmark's Django-side steps, run with the app's virtualenv by bench/run.py.

    python bench/appside.py seed-chefs --count 10000 --bookings 100000
    python bench/appside.py due-posts --count 10000 --at 2030-01-01T00:00:00+00:00
    python bench/appside.py explain

Each prints one JSON document on its last line of standard output. The runner itself never
imports Django: it drives these through subprocesses pointed at the private benchmark stack.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "softfactory.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402
from django.db.models import Q, QuerySet  # noqa: E402
from django.utils import timezone  # noqa: E402

from coocook.management.commands import seed_coocook  # noqa: E402
from coocook.models import Booking, Chef, ChefCount  # noqa: E402
from platform_core.models import User  # noqa: E402
from review.models import Campaign, CampaignCount  # noqa: E402
from sns.models import SNSPost  # noqa: E402

REPLICA = "replica_1" if "replica_1" in connections.databases else "default"


def seed_chefs(count: int, bookings: int) -> dict[str, Any]:
    """The real coocook seeder at a size it has no preset for (the 10k-chef comparison)."""
    seed_coocook.SCALES[f"bench{count}"] = (count, bookings)
    started = time.monotonic()
    call_command("seed_coocook", scale=f"bench{count}", seed=42)
    return {"chefs": count, "bookings": bookings, "seconds": round(time.monotonic() - started, 2)}


def due_posts(count: int, at: dt.datetime) -> dict[str, Any]:
    """`count` scheduled posts all due at `at`, spread over the seeded users and every platform."""
    user_ids = list(User.objects.filter(email__startswith="seed-user-").order_by("pk").values_list("pk", flat=True))
    platforms = list(SNSPost.Platform.values)
    posts = [
        SNSPost(
            user_id=user_ids[i % len(user_ids)],
            platform=platforms[i % len(platforms)],
            content=f"Drain benchmark post {i}",
            status=SNSPost.Status.SCHEDULED,
            scheduled_at=at,
            next_attempt_at=at,
        )
        for i in range(count)
    ]
    created = SNSPost.objects.bulk_create(posts, batch_size=2_000)
    ids = [post.pk for post in created]
    return {"count": len(ids), "min_id": min(ids), "max_id": max(ids), "due_at": at.isoformat()}


def _plan(sql: str, params: Any) -> list[str]:
    with connections[REPLICA].cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        return [row[0] for row in cursor.fetchall()]


def _explain_page(queryset: QuerySet[Any], size: int) -> list[str]:
    sql, params = queryset[:size].query.get_compiler(REPLICA).as_sql()
    return _plan(sql, params)


def _explain_count(queryset: QuerySet[Any]) -> list[str]:
    # The subquery is flattened by the planner: the plan is the one of the page's COUNT(*).
    sql, params = queryset.order_by().values("pk").query.get_compiler(REPLICA).as_sql()
    return _plan(f"SELECT COUNT(*) FROM ({sql}) AS counted", params)  # noqa: S608 - Django-built SQL


def _explain_sum(counts: QuerySet[Any]) -> list[str]:
    # The stored-count read of the list selectors: SUM(n) over the rows of the filter's keys.
    sql, params = counts.values("n").query.get_compiler(REPLICA).as_sql()
    return _plan(f"SELECT SUM(n) FROM ({sql}) AS stored", params)  # noqa: S608 - Django-built SQL


def explain() -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of each hot query on a replica, where the API's reads run."""
    user = User.objects.filter(email="seed-user-0@example.com").first() or User.objects.order_by("pk").first()
    user_id = user.pk if user else 0
    chefs = Chef.objects.filter(is_active=True, cuisine_type="korean").order_by("-rating", "id")
    bookings = Booking.objects.filter(user_id=user_id).order_by("-booking_date", "id")
    campaigns = Campaign.objects.filter(status="active").order_by("-created_at", "id")
    chef_counts = ChefCount.objects.filter(is_active=True)
    campaign_counts = CampaignCount.objects.filter(status="active")
    due = SNSPost.objects.filter(Q(status="scheduled"), next_attempt_at__lte=timezone.now()).order_by(
        "next_attempt_at", "id"
    )
    queries = [
        ("chef list by cuisine (page)", "coocook_chef", _explain_page(chefs, 12)),
        (
            "chef list by cuisine (stored count)",
            "coocook_chefcount",
            _explain_sum(chef_counts.filter(cuisine_type="korean")),
        ),
        ("chef list, all (stored count)", "coocook_chefcount", _explain_sum(chef_counts)),
        ("a user's bookings by date (page)", "coocook_booking", _explain_page(bookings, 12)),
        ("a user's bookings by date (count)", "coocook_booking", _explain_count(bookings)),
        ("campaigns by status (page)", "review_campaign", _explain_page(campaigns, 12)),
        ("campaigns by status (stored count)", "review_campaigncount", _explain_sum(campaign_counts)),
        ("due posts (dispatcher claim)", "sns_snspost", _explain_page(due.values("pk"), 500)),
        # What the lists ran per request before the stored counts, for comparison (no longer run).
        ("chef list, all (COUNT(*), replaced)", "coocook_chef", _explain_count(Chef.objects.filter(is_active=True))),
        ("campaigns by status (COUNT(*), replaced)", "review_campaign", _explain_count(campaigns)),
    ]
    return {
        "server": REPLICA,
        "queries": [
            # A stored-count table holds a few dozen rows: a sequential scan is its right plan. The
            # replaced COUNT(*)s read ~95 % of the table, where the planner rightly scans it.
            {"name": n, "table": t, "plan": p, "needs_index": not (t.endswith("count") or "replaced" in n)}
            for n, t, p in queries
        ],
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench/appside.py")
    sub = parser.add_subparsers(dest="command", required=True)
    chefs = sub.add_parser("seed-chefs")
    chefs.add_argument("--count", type=int, required=True)
    chefs.add_argument("--bookings", type=int, required=True)
    posts = sub.add_parser("due-posts")
    posts.add_argument("--count", type=int, required=True)
    posts.add_argument("--at", type=dt.datetime.fromisoformat, required=True)
    sub.add_parser("explain")
    args = parser.parse_args(argv)
    if args.command == "seed-chefs":
        result = seed_chefs(args.count, args.bookings)
    elif args.command == "due-posts":
        result = due_posts(args.count, args.at)
    else:
        result = explain()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
