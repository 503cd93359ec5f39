"""Chaos (research section 4): ~2,000 posts through real workers and two beats while a whole
worker is killed mid-publish, a pool child is killed mid-call and one beat is killed, against a
local platform that fails some calls and honours Idempotency-Key. Run by `make chaos`.

The platform is the judge: every post must be published exactly once as *it* sees it (distinct
keys accepted = posts published), none before its time, every post final, every failure
explained. Set CHAOS_POSTS / CHAOS_SPREAD_SECONDS to scale it.
"""

from __future__ import annotations

import os
import signal
import statistics
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from sns.models import SNSPost
from tests.celery.fake_platform import FakePlatform, pids_calling
from tests.platform_core.factories import UserFactory
from tests.workers import wait_until

POSTS = int(os.environ.get("CHAOS_POSTS", "2000"))
SPREAD = float(os.environ.get("CHAOS_SPREAD_SECONDS", "60"))
LEAD = 3.0  # seconds between creating the posts and the first one being due
CONCURRENCY = 10  # pool processes per worker (two workers)
LEASE = 10
WEBHOOK_EVERYWHERE = ",".join(f"{p}=sns.publishers.WebhookPublisher" for p in SNSPost.Platform.values)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def wait_for_a_call(platform: FakePlatform, pids_of, *, timeout: float = 15.0) -> dict:
    """Wait until one of the given processes is in the middle of a call to the platform."""
    return wait_until(
        lambda: pids_calling(platform, pids_of()), timeout=timeout, interval=0.02, message="nobody was mid-call"
    )


@pytest.mark.chaos
def test_two_thousand_posts_survive_killed_workers_a_killed_pool_child_and_two_beats(celery_processes):
    phases: dict[str, float] = {}
    platform = FakePlatform(delay=(0.05, 0.25), fail_rate=0.05, seed=2026).start()
    try:
        celery_processes.env = {
            "SNS_PUBLISHERS": WEBHOOK_EVERYWHERE,
            "SNS_WEBHOOK_URL": platform.url,
            "SNS_LEASE_SECONDS": str(LEASE),
            "CELERY_TASK_SOFT_TIME_LIMIT": "5",
            "CELERY_TASK_TIME_LIMIT": "8",
            "SNS_PUBLISH_TIMEOUT_SECONDS": "3",
            "CELERY_VISIBILITY_TIMEOUT": "60",
            "SNS_BACKOFF_BASE": "0.5",
            "SNS_BACKOFF_CAP": "4",
            "LOG_LEVEL": "WARNING",
        }
        users = UserFactory.create_batch(20)
        started = time.monotonic()
        worker_a = celery_processes.worker("a", concurrency=CONCURRENCY, wait=False)
        worker_b = celery_processes.worker("b", concurrency=CONCURRENCY, wait=False)
        beat_1 = celery_processes.beat("one", wait=False)
        for process in (worker_a, worker_b):
            process.wait_for_log(" ready.")
        beat_1.wait_for_log("Sending due task")
        beat_2 = celery_processes.beat("two")  # two beats at once, for most of the run
        phases["start processes"] = time.monotonic() - started

        started = time.monotonic()
        t0 = timezone.now() + timedelta(seconds=LEAD)
        platforms = SNSPost.Platform.values
        SNSPost.objects.bulk_create(
            SNSPost(
                user=users[i % len(users)],
                platform=platforms[i % len(platforms)],
                content=f"chaos post {i}",
                scheduled_at=t0 + timedelta(seconds=i * SPREAD / POSTS),
                next_attempt_at=t0 + timedelta(seconds=i * SPREAD / POSTS),
                max_attempts=5,
            )
            for i in range(POSTS)
        )
        phases["create posts"] = time.monotonic() - started
        start_of_posts = t0.timestamp()

        def at(offset: float) -> None:
            time.sleep(max(0.0, start_of_posts + offset - time.time()))

        # 1. kill -9 a whole worker (main process and pool) while it is mid-publish. Whichever
        # worker it is: with one publish task per chunk, the broker may hand every publish task of
        # a stretch to the same worker while the other takes the dispatcher's.
        at(10)
        calling = wait_for_a_call(platform, lambda: worker_a.children() + worker_b.children())
        victim, survivor = (worker_a, worker_b) if set(calling) & set(worker_a.children()) else (worker_b, worker_a)
        killed_at = time.time()
        victim.kill()
        mid_call_whole_worker = [call for calls in calling.values() for call in calls]
        time.sleep(3)
        replacement = celery_processes.worker("a2", concurrency=CONCURRENCY)

        # 2. kill -9 one pool child of a live worker while it is mid-call.
        at(25)
        calling = wait_for_a_call(platform, lambda: survivor.children() + replacement.children())
        child, calls = next(iter(calling.items()))
        os.kill(child, signal.SIGKILL)
        mid_call_pool_child = list(calls)

        # 3. kill -9 one of the two beats.
        at(35)
        ticks_before_kill = {
            "one": beat_1.log().count("Sending due task sns-dispatch-due-posts"),
            "two": beat_2.log().count("Sending due task sns-dispatch-due-posts"),
        }
        beat_1.kill()

        def unfinished() -> int:
            return SNSPost.objects.using("default").exclude(status__in=["published", "failed"]).count()

        wait_until(lambda: unfinished() == 0, timeout=SPREAD + 6 * LEASE + 60, interval=1.0, message="posts left")
        phases["publish everything"] = time.time() - start_of_posts
        stopping = time.monotonic()
        celery_processes.stop_all()
        phases["stop processes"] = time.monotonic() - stopping
    finally:
        platform.stop()

    rows = list(
        SNSPost.objects.using("default").values(
            "pk",
            "status",
            "scheduled_at",
            "published_at",
            "attempts",
            "max_attempts",
            "last_error",
            "idempotency_key",
            "external_id",
            "claimed_at",
            "call_started_at",
        )
    )
    by_key = {str(row["idempotency_key"]): row for row in rows}
    published = {key for key, row in by_key.items() if row["status"] == "published"}
    failed = [row for row in rows if row["status"] == "failed"]
    accepted = platform.published_keys()
    calls = platform.calls
    absorbed = sum(1 for call in calls if call.outcome == "replayed")
    abandoned = [call for call in calls if call.abandoned]
    delays = [(row["published_at"] - row["scheduled_at"]).total_seconds() for row in rows if row["published_at"]]
    lost_call_retries = sum(row["max_attempts"] - 5 for row in rows)

    print()
    print(f"chaos: {len(rows)} posts over {SPREAD:g} s; {len(calls)} platform calls")
    print(
        f"  mid-call at the whole-worker kill: {len(mid_call_whole_worker)}; at the pool-child kill: "
        f"{len(mid_call_pool_child)}; calls the platform saw abandoned: {len(abandoned)}"
    )
    print(f"  dispatcher ticks sent before the beat kill: {ticks_before_kill}")
    print(
        f"  published {len(published)}, failed {len(failed)}; repeated calls absorbed by keys: {absorbed}; "
        f"lost calls retried with the same key: {lost_call_retries}"
    )
    print(f"  attempts: {dict(sorted(Counter(row['attempts'] for row in rows).items()))}")
    print(
        f"  publish delay (s): p50 {percentile(delays, 50):.2f}  p95 {percentile(delays, 95):.2f}  p99 {percentile(delays, 99):.2f}  max {max(delays):.2f}  mean {statistics.mean(delays):.2f}"
    )
    done = [row for row in rows if row["published_at"] and row["attempts"] == 1]
    for label, start, end in (
        ("due -> claimed", "scheduled_at", "claimed_at"),
        ("claimed -> call", "claimed_at", "call_started_at"),
        ("call -> published", "call_started_at", "published_at"),
    ):
        spans = [(row[end] - row[start]).total_seconds() for row in done]
        print(f"    {label} (first-try posts): p50 {percentile(spans, 50):.2f}  p99 {percentile(spans, 99):.2f}")
    print("  durations (s): " + ", ".join(f"{name} {seconds:.1f}" for name, seconds in phases.items()))

    # The kills really happened mid-call; otherwise they tested nothing.
    assert len(mid_call_whole_worker) > 0
    assert len(mid_call_pool_child) > 0
    repeated = Counter(call.key for call in calls if call.outcome == "replayed")
    assert any(call.abandoned or repeated[call.key] for call in mid_call_whole_worker + mid_call_pool_child)
    assert all(call.received_at <= killed_at for call in mid_call_whole_worker)
    # Two beats really dispatched at the same time.
    assert min(ticks_before_kill.values()) >= 10
    # Exactly once, as the platform sees it.
    assert all(count == 1 for count in accepted.values())
    assert set(accepted) == published
    assert all(by_key[key]["external_id"] == platform.stored[key]["id"] for key in published)
    # Never before its time, on either side.
    assert all(row["published_at"] >= row["scheduled_at"] for row in rows if row["published_at"])
    first_call = {}
    for call in calls:
        first_call.setdefault(call.key, call.received_at)
    assert all(first_call[key] >= by_key[key]["scheduled_at"].timestamp() for key in first_call)
    # Every post final; every failure explained.
    assert {row["status"] for row in rows} <= {"published", "failed"}
    assert all(row["last_error"] for row in failed)
    assert len(rows) == POSTS
