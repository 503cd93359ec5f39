"""sns: Celery tasks (thin adapters over services; docs/SCHEDULING.md)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from sns import selectors, services
from softfactory import health, metrics


@shared_task(ignore_result=True)
def dispatch_due_posts() -> dict[str, int]:
    """Beat entry point (every ~1 s) and post-commit kick: reap expired claims, claim due posts."""
    outcome = services.posts_dispatch()
    health.record_dispatcher_run()
    metrics.SNS_DISPATCHER_LAST_RUN.set_to_current_time()
    return outcome


@shared_task(ignore_result=True)
def publish_posts(post_ids: list[int], token: str) -> dict[int, str]:
    """Publish a chunk of one claim's posts; those it no longer owns (redelivery, reaped, done) are skipped."""
    return services.posts_publish(post_ids=post_ids, token=token, budget_seconds=settings.CELERY_TASK_SOFT_TIME_LIMIT)


@shared_task(ignore_result=True)
def publish_post(post_id: int, token: str) -> str:
    """One post (messages queued before publish_posts existed); the batch path with one id."""
    return services.post_publish(post_id=post_id, token=token)


@shared_task(ignore_result=True)
def record_post_stats() -> dict[str, int]:
    """Export how many posts are in each status (softfactory_sns_posts)."""
    counts = selectors.post_counts_by_status()
    for status, count in counts.items():
        metrics.SNS_POSTS.labels(status).set(count)
    return counts
