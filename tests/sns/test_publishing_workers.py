"""Publishing with real processes: `celery worker` and `celery beat` subprocesses on the test
database and this suite's Redis broker database, the webhook publisher calling a local HTTP
platform (tests/celery/fake_platform.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from sns.models import SNSPost
from tests import workers
from tests.celery.fake_platform import FakePlatform
from tests.platform_core.factories import UserFactory
from tests.workers import broker_unreachable, wait_until

celery_processes = workers.celery_processes  # the fixture, shared with tests/celery

WEBHOOK_EVERYWHERE = ",".join(f"{p}=sns.publishers.WebhookPublisher" for p in SNSPost.Platform.values)


def webhook_env(platform: FakePlatform, **extra: str) -> dict[str, str]:
    return {
        "SNS_PUBLISHERS": WEBHOOK_EVERYWHERE,
        "SNS_WEBHOOK_URL": platform.url,
        "SNS_BACKOFF_BASE": "0.2",
        "SNS_BACKOFF_CAP": "1",
        "SNS_PUBLISH_TIMEOUT_SECONDS": "5",
        **extra,
    }


@pytest.fixture
def platform():
    server = FakePlatform(delay=(0.01, 0.05)).start()
    yield server
    server.stop()


def posts(*pks: int) -> list[SNSPost]:
    return list(SNSPost.objects.using("default").filter(pk__in=pks).order_by("pk"))


def all_final(*pks: int) -> bool:
    return all(post.status in ("published", "failed", "cancelled") for post in posts(*pks))


def schedule(client, **body) -> int:
    response = client.post("/api/sns/schedule", {"platform": "twitter", "content": "Hi", **body}, format="json")
    assert response.status_code == 202, response.content
    return int(response.json()["id"])


def test_posts_scheduled_ahead_are_published_after_their_time_through_the_webhook(
    celery_processes, platform, client_for
):
    client = client_for(UserFactory.create())
    celery_processes.env = webhook_env(platform)
    celery_processes.worker(concurrency=2)
    celery_processes.beat()
    now = timezone.now()
    ids = [
        schedule(client, platform=name, content=f"post {i}", scheduled_at=(now + timedelta(seconds=3 + i)).isoformat())
        for i, name in enumerate(["twitter", "instagram", "facebook", "linkedin", "threads"])
    ]
    assert {post.status for post in posts(*ids)} == {"scheduled"}

    wait_until(lambda: all_final(*ids), timeout=45, message="posts not published in time")

    rows = posts(*ids)
    assert {row.status for row in rows} == {"published"}
    calls = {call.key: call for call in platform.calls}
    for row in rows:
        assert row.published_at >= row.scheduled_at
        assert row.attempts == 1
        assert calls[str(row.idempotency_key)].received_at >= row.scheduled_at.timestamp()
        assert row.external_id == platform.stored[str(row.idempotency_key)]["id"]
    assert platform.published_keys() == {str(row.idempotency_key): 1 for row in rows}


def test_a_post_without_scheduled_at_goes_out_within_seconds_without_waiting_for_beat(
    celery_processes, platform, client_for
):
    celery_processes.env = webhook_env(platform)
    celery_processes.worker(concurrency=1)  # no beat: only the post-commit kick can wake the dispatcher

    post_id = schedule(client_for(UserFactory.create()))

    wait_until(lambda: all_final(post_id), timeout=10, message="the kicked dispatcher did not publish the post")
    (row,) = posts(post_id)
    assert row.status == "published"
    assert (row.published_at - row.scheduled_at).total_seconds() < 5


def test_a_publisher_failing_three_times_then_succeeding_publishes_with_four_attempts(celery_processes, client_for):
    server = FakePlatform(fail_first=3).start()
    try:
        celery_processes.env = webhook_env(server)
        celery_processes.worker(concurrency=2)
        celery_processes.beat()

        post_id = schedule(client_for(UserFactory.create()))

        wait_until(lambda: all_final(post_id), timeout=40, message="post not final")
        (row,) = posts(post_id)
        assert (row.status, row.attempts, row.last_error) == ("published", 4, None)
        assert [call.outcome for call in server.calls] == ["failed", "failed", "failed", "accepted"]
        assert len({call.key for call in server.calls}) == 1  # the same key on every attempt
    finally:
        server.stop()


def test_a_publisher_that_always_fails_leaves_the_post_failed_after_the_attempt_limit(
    celery_processes, client_for, settings
):
    settings.SNS_MAX_ATTEMPTS = 4  # the limit is stored in the row when the post is scheduled
    server = FakePlatform(always_fail_status=503).start()
    try:
        celery_processes.env = webhook_env(server)
        celery_processes.worker(concurrency=2)
        celery_processes.beat()

        post_id = schedule(client_for(UserFactory.create()))

        wait_until(lambda: all_final(post_id), timeout=40, message="post not final")
        (row,) = posts(post_id)
        assert (row.status, row.attempts) == ("failed", 4)
        assert row.last_error.startswith("HTTP 503 from the webhook")
        assert row.last_error.endswith("(attempt 4/4)")
        assert len(server.calls) == 4
        assert server.published_keys() == {}
    finally:
        server.stop()


def test_a_permanent_refusal_fails_the_post_after_one_call(celery_processes, client_for):
    server = FakePlatform(always_fail_status=422).start()
    try:
        celery_processes.env = webhook_env(server)
        celery_processes.worker(concurrency=1)
        celery_processes.beat()

        post_id = schedule(client_for(UserFactory.create()))

        wait_until(lambda: all_final(post_id), timeout=30, message="post not final")
        (row,) = posts(post_id)
        assert (row.status, row.attempts) == ("failed", 1)
        assert row.last_error.startswith("HTTP 422 from the webhook")
    finally:
        server.stop()


def test_a_post_saved_while_the_broker_was_down_is_published_by_the_next_dispatcher_run(
    celery_processes, platform, client_for
):
    client = client_for(UserFactory.create())
    with broker_unreachable():
        post_id = schedule(client)  # the kick fails after commit; the answer is still 202
    (row,) = posts(post_id)
    assert row.status == "scheduled"

    celery_processes.env = webhook_env(platform)
    celery_processes.worker(concurrency=1)
    celery_processes.beat()

    wait_until(lambda: all_final(post_id), timeout=30, message="post not published after the outage")
    (row,) = posts(post_id)
    assert row.status == "published"
    assert platform.published_keys() == {str(row.idempotency_key): 1}


def test_a_cancelled_post_is_not_published(celery_processes, platform, client_for):
    client = client_for(UserFactory.create())
    celery_processes.env = webhook_env(platform)
    celery_processes.worker(concurrency=1)
    celery_processes.beat()
    soon = (timezone.now() + timedelta(seconds=3)).isoformat()
    kept, cancelled = schedule(client, scheduled_at=soon), schedule(client, scheduled_at=soon)
    assert client.post(f"/api/sns/posts/{cancelled}/cancel").status_code == 200

    wait_until(lambda: all_final(kept), timeout=30, message="post not published")

    assert [row.status for row in posts(kept, cancelled)] == ["published", "cancelled"]
    assert [call.post_id for call in platform.calls] == [kept]
