"""A real worker drains a backlog of due posts through batch publish tasks (docs/SCHEDULING.md,
"The publish task"): one `celery worker` (prefork) and one beat on the test database, the
webhook publisher calling the local platform over keep-alive connections."""

from __future__ import annotations

import math
import re
from datetime import timedelta

import pytest
from django.db.models import Max, Min
from django.utils import timezone

from sns.models import SNSPost
from tests.celery.fake_platform import FakePlatform
from tests.platform_core.factories import UserFactory
from tests.workers import wait_until

POSTS = 500
CHUNK = 50
THREADS = 8
WEBHOOK_EVERYWHERE = ",".join(f"{p}=sns.publishers.WebhookPublisher" for p in SNSPost.Platform.values)


@pytest.mark.parametrize("concurrency", [4, 2])
def test_a_worker_drains_five_hundred_due_posts_in_batches_publishing_each_once(celery_processes, concurrency):
    platform = FakePlatform(delay=(0.005, 0.02)).start()
    try:
        celery_processes.env = {
            "SNS_PUBLISHERS": WEBHOOK_EVERYWHERE,
            "SNS_WEBHOOK_URL": platform.url,
            "SNS_PUBLISH_CHUNK": str(CHUNK),
            "SNS_PUBLISH_THREADS": str(THREADS),
            "SNS_PUBLISH_TIMEOUT_SECONDS": "5",
            "LOG_LEVEL": "INFO",
        }
        users = UserFactory.create_batch(5)
        due = timezone.now() - timedelta(seconds=1)
        platforms = SNSPost.Platform.values
        SNSPost.objects.bulk_create(
            SNSPost(
                user=users[i % len(users)],
                platform=platforms[i % len(platforms)],
                content=f"backlog post {i}",
                scheduled_at=due,
                next_attempt_at=due,
                max_attempts=5,
            )
            for i in range(POSTS)
        )
        worker = celery_processes.worker(concurrency=concurrency)
        celery_processes.beat()

        def unfinished() -> int:
            return SNSPost.objects.using("default").exclude(status="published").count()

        wait_until(lambda: unfinished() == 0, timeout=120, interval=0.5, message="posts left unpublished")
        log = worker.log()
    finally:
        platform.stop()

    rows = SNSPost.objects.using("default")
    span = rows.aggregate(first=Min("claimed_at"), last=Max("published_at"))
    seconds = (span["last"] - span["first"]).total_seconds()
    print(
        f"\nprefork x{concurrency}: {POSTS} posts in {seconds:.2f} s = {POSTS / seconds:.0f} posts/s (claim to last publish)"
    )

    # Exactly once, as the platform saw it: one call per post, no repeat absorbed by a key.
    assert platform.published_keys() == {str(key): 1 for key in rows.values_list("idempotency_key", flat=True)}
    assert len(platform.calls) == POSTS
    assert set(rows.values_list("attempts", flat=True)) == {1}
    assert all(
        row["external_id"] == platform.stored[str(row["idempotency_key"])]["id"]
        for row in rows.values("external_id", "idempotency_key")
    )
    # In chunks, over keep-alive connections (at most one per pool thread of each process).
    batches = re.findall(r"Task sns\.tasks\.publish_posts\[[^\]]+\] received", log)
    assert math.ceil(POSTS / CHUNK) <= len(batches) <= POSTS / 10
    assert "sns.tasks.publish_post[" not in log
    assert platform.connections <= concurrency * THREADS
