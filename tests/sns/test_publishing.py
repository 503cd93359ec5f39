"""Publishing, in process: the dispatcher's claim, the reaper, the fenced publish task, the
publishers and the schedule API's post-commit kick (docs/SCHEDULING.md). Messages go to this
suite's real Redis broker database; tests with real worker processes are in
test_publishing_workers.py."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from datetime import timedelta
from typing import ClassVar

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connections, transaction
from django.test import override_settings
from django.utils import timezone

from sns import publishers, services, tasks
from sns.models import SNSPost
from sns.publishers import (
    OutcomeUnknown,
    PermanentPublishError,
    Publication,
    Publisher,
    TransientPublishError,
    WebhookPublisher,
)
from tests.celery.fake_platform import FakePlatform
from tests.platform_core.factories import UserFactory
from tests.sns.factories import SNSPostFactory
from tests.workers import broker_unreachable, flush_broker, free_port, queue_length

SCRIPTED = "tests.sns.test_publishing.ScriptedPublisher"
SCRIPTED_WITHOUT_KEYS = "tests.sns.test_publishing.ScriptedPublisherWithoutKeys"


class ScriptedPublisher(Publisher):
    """Plays its script: each call pops an outcome (an exception to raise, or an external id)."""

    honours_idempotency_keys = True
    script: ClassVar[list[object]] = []
    calls: ClassVar[list[tuple[int, str]]] = []
    during_call: ClassVar[list[object]] = []

    def publish(self, post: SNSPost, *, idempotency_key: str, timeout: float) -> Publication:
        type(self).calls.append((post.pk, idempotency_key))
        for probe in type(self).during_call:
            probe(post)  # type: ignore[operator]
        outcome = type(self).script.pop(0) if type(self).script else "ext-1"
        if isinstance(outcome, Exception):
            raise outcome
        return Publication(external_id=str(outcome))


class ScriptedPublisherWithoutKeys(ScriptedPublisher):
    honours_idempotency_keys = False


@pytest.fixture
def scripted():
    ScriptedPublisher.script = []
    ScriptedPublisher.calls = []
    ScriptedPublisher.during_call = []
    with override_settings(SNS_PUBLISHERS={"twitter": SCRIPTED, "instagram": SCRIPTED_WITHOUT_KEYS}):
        yield ScriptedPublisher


@pytest.fixture
def broker():
    flush_broker()
    yield
    flush_broker()


def queued_messages(queue: str) -> list[tuple[str, list]]:
    """(task name, args) of the messages waiting in a queue of this suite's broker, oldest first."""
    raw = redis.Redis.from_url(django_settings.CELERY_BROKER_URL).lrange(queue, 0, -1)
    messages = [json.loads(message) for message in reversed(raw)]  # kombu LPUSHes: newest first
    return [(message["headers"]["task"], json.loads(base64.b64decode(message["body"]))[0]) for message in messages]


def due_post(**fields) -> SNSPost:
    moment = timezone.now() - timedelta(seconds=5)
    return SNSPostFactory.create(**{"scheduled_at": moment, "next_attempt_at": moment, **fields})


def rolled_back(work) -> None:
    """Run `work()` in a transaction that then fails and rolls back."""
    with transaction.atomic():
        work()
        raise RuntimeError("the surrounding transaction fails")


def claim(post: SNSPost) -> str:
    """Claim exactly this post as the dispatcher would; returns its token."""
    assert services.posts_claim_due(limit=100) == [post.pk]
    post.refresh_from_db()
    return str(post.claim_token)


def fresh(post: SNSPost) -> SNSPost:
    return SNSPost.objects.using("default").get(pk=post.pk)


# --- the dispatcher's claim ---------------------------------------------------------------


@pytest.mark.django_db
def test_the_claim_takes_only_due_scheduled_posts_under_one_token_and_a_lease(settings):
    settings.SNS_LEASE_SECONDS = 300
    due = [due_post() for _ in range(3)]
    later = SNSPostFactory.create()  # due tomorrow
    cancelled = due_post(status=SNSPost.Status.CANCELLED)
    published = due_post(published=True)

    claimed = services.posts_claim_due(limit=100)

    assert sorted(claimed) == sorted(post.pk for post in due)
    rows = SNSPost.objects.filter(pk__in=claimed)
    assert {row.status for row in rows} == {SNSPost.Status.PUBLISHING}
    assert len({row.claim_token for row in rows}) == 1
    assert all(
        row.lease_expires_at - row.claimed_at == timedelta(seconds=300) and row.call_started_at is None for row in rows
    )
    for untouched, status in ((later, "scheduled"), (cancelled, "cancelled"), (published, "published")):
        assert fresh(untouched).status == status


@pytest.mark.django_db
def test_the_claim_takes_the_longest_due_first_and_at_most_the_batch():
    posts = [due_post(next_attempt_at=timezone.now() - timedelta(minutes=minutes)) for minutes in (1, 3, 2)]

    assert services.posts_claim_due(limit=2) == [posts[1].pk, posts[2].pk]
    assert fresh(posts[0]).status == SNSPost.Status.SCHEDULED


@pytest.mark.django_db
def test_a_post_is_never_claimed_before_its_next_attempt_time():
    post = SNSPostFactory.create(
        scheduled_at=timezone.now() + timedelta(seconds=30), next_attempt_at=timezone.now() + timedelta(seconds=30)
    )

    assert services.posts_claim_due(limit=100) == []
    assert fresh(post).status == SNSPost.Status.SCHEDULED


@pytest.mark.django_db(transaction=True)
def test_the_dispatcher_queues_one_publish_task_per_chunk_of_each_claim_after_commit(broker, settings):
    settings.SNS_DISPATCH_BATCH, settings.SNS_PUBLISH_CHUNK = 4, 3
    posts = [due_post() for _ in range(10)]

    outcome = tasks.dispatch_due_posts()

    assert outcome["claimed"] == 10
    # claims of 4, 4 and 2 posts -> chunks of 3 + 1, 3 + 1, 2
    messages = queued_messages("publish")
    assert [(name, len(args[0])) for name, args in messages] == [
        ("sns.tasks.publish_posts", n) for n in (3, 1, 3, 1, 2)
    ]
    assert sorted(pk for _, args in messages for pk in args[0]) == sorted(p.pk for p in posts)
    tokens = {str(p.claim_token) for p in SNSPost.objects.filter(pk__in=[p.pk for p in posts])}
    assert {args[1] for _, args in messages} == tokens and len(tokens) == 3
    assert SNSPost.objects.filter(pk__in=[p.pk for p in posts], status="publishing").count() == 10


@pytest.mark.django_db(transaction=True)
def test_a_claim_rolled_back_queues_nothing(broker):
    post = due_post()

    claimed: list[int] = []
    with pytest.raises(RuntimeError):
        rolled_back(lambda: claimed.extend(services.posts_claim_due(limit=10)))

    assert claimed == [post.pk]

    assert queue_length("publish") == 0
    assert fresh(post).status == SNSPost.Status.SCHEDULED


@pytest.mark.django_db(transaction=True)
def test_claims_whose_messages_cannot_be_sent_are_handed_back_at_once(broker):
    post = due_post()

    with broker_unreachable():
        assert services.posts_claim_due(limit=10) == [post.pk]  # robust: the commit stands

    row = fresh(post)
    assert (row.status, row.claim_token, row.lease_expires_at) == (SNSPost.Status.SCHEDULED, None, None)


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_the_same_time_claim_disjoint_posts(broker):
    posts = [due_post() for _ in range(60)]
    start = threading.Barrier(2)
    claimed: list[list[int]] = []

    def dispatcher() -> None:
        try:
            start.wait(timeout=10)
            for _ in range(30):
                claimed.append(services.posts_claim_due(limit=3))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    every_claim = [pk for batch in claimed for pk in batch]
    assert len(every_claim) == len(set(every_claim))
    assert set(every_claim) <= {post.pk for post in posts}


# --- the publish task ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_successful_call_publishes_the_post_with_its_time_and_external_id(scripted):
    post = due_post()
    token = claim(post)
    scripted.script = ["tw-981"]

    assert services.post_publish(post_id=post.pk, token=token) == "published"

    row = fresh(post)
    assert (row.status, row.external_id, row.attempts, row.last_error) == ("published", "tw-981", 1, None)
    assert row.published_at >= row.scheduled_at
    assert scripted.calls == [(post.pk, str(post.idempotency_key))]


@pytest.mark.django_db(transaction=True)
def test_the_call_start_is_committed_before_the_publisher_is_called(scripted):
    post = due_post()
    token = claim(post)
    seen: list[tuple] = []

    def look_from_another_connection(_post: SNSPost) -> None:
        def read() -> None:
            try:
                seen.append(
                    SNSPost.objects.using("default")
                    .filter(pk=post.pk)
                    .values_list("status", "attempts", "call_started_at")
                    .get()
                )
            finally:
                connections.close_all()

        reader = threading.Thread(target=read)
        reader.start()
        reader.join(timeout=10)

    scripted.during_call = [look_from_another_connection]
    services.post_publish(post_id=post.pk, token=token)

    assert len(seen) == 1
    status, attempts, call_started_at = seen[0]
    assert (status, attempts) == ("publishing", 1) and call_started_at is not None


@pytest.mark.django_db
def test_a_transient_error_puts_the_post_back_with_a_backoff_stored_in_the_row(scripted, settings):
    settings.SNS_BACKOFF_BASE, settings.SNS_BACKOFF_CAP = 60, 3600
    post = due_post()
    token = claim(post)
    scripted.script = [TransientPublishError("HTTP 503 from the webhook")]

    assert services.post_publish(post_id=post.pk, token=token) == "retry"

    row = fresh(post)
    assert (row.status, row.attempts, row.claim_token, row.call_started_at) == ("scheduled", 1, None, None)
    assert row.last_error == "HTTP 503 from the webhook (attempt 1/5)"
    assert row.scheduled_at == post.scheduled_at  # what the user asked for never moves
    # Full jitter over [0, 60 s] after the first attempt (Now() is this test's transaction start).
    assert timedelta(0) <= row.next_attempt_at - row.last_error_at <= timedelta(seconds=60)


@pytest.mark.django_db
def test_a_permanent_error_fails_the_post_at_once(scripted):
    post = due_post()
    token = claim(post)
    scripted.script = [PermanentPublishError("HTTP 400 from the webhook: content too long")]

    assert services.post_publish(post_id=post.pk, token=token) == "failed"

    row = fresh(post)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error == "HTTP 400 from the webhook: content too long (attempt 1/5)"


@pytest.mark.django_db
def test_the_last_allowed_attempt_failing_fails_the_post(scripted):
    post = due_post(attempts=4)
    token = claim(post)
    scripted.script = [TransientPublishError("HTTP 503 from the webhook")]

    assert services.post_publish(post_id=post.pk, token=token) == "failed"

    row = fresh(post)
    assert (row.status, row.attempts, row.last_error) == ("failed", 5, "HTTP 503 from the webhook (attempt 5/5)")


@pytest.mark.django_db
def test_an_unknown_outcome_is_retried_with_the_same_key_when_the_publisher_honours_keys(scripted):
    post = due_post(platform="twitter")
    token = claim(post)
    scripted.script = [OutcomeUnknown("no answer within 30 s")]

    assert services.post_publish(post_id=post.pk, token=token) == "retry"

    row = fresh(post)
    assert (row.status, row.idempotency_key) == ("scheduled", post.idempotency_key)
    assert row.last_error == "outcome unknown: no answer within 30 s (attempt 1/5)"


@pytest.mark.django_db
def test_an_unknown_outcome_fails_the_post_when_the_publisher_ignores_keys(scripted):
    post = due_post(platform="instagram")
    token = claim(post)
    scripted.script = [OutcomeUnknown("no answer within 30 s")]

    assert services.post_publish(post_id=post.pk, token=token) == "failed"
    assert fresh(post).last_error.startswith("outcome unknown: no answer within 30 s")


@pytest.mark.django_db
def test_a_crashing_publisher_counts_as_an_unknown_outcome(scripted):
    post = due_post(platform="instagram")
    token = claim(post)
    scripted.script = [KeyError("bug")]

    assert services.post_publish(post_id=post.pk, token=token) == "failed"
    assert fresh(post).last_error.startswith("outcome unknown: KeyError('bug')")


@pytest.mark.django_db
def test_a_stale_token_or_a_redelivered_message_calls_nothing(scripted):
    post = due_post()
    token = claim(post)

    assert services.post_publish(post_id=post.pk, token=str(uuid.uuid4())) == "stale"
    assert services.post_publish(post_id=post.pk, token=token) == "published"
    assert services.post_publish(post_id=post.pk, token=token) == "stale"  # redelivery after success

    assert len(scripted.calls) == 1
    assert fresh(post).attempts == 1


@pytest.mark.django_db
def test_a_message_delivered_twice_while_the_first_is_calling_calls_once(scripted):
    post = due_post()
    token = claim(post)
    outcomes = []
    scripted.during_call = [lambda _post: outcomes.append(services.post_publish(post_id=post.pk, token=token))]

    assert services.post_publish(post_id=post.pk, token=token) == "published"

    assert outcomes == ["stale"]
    assert len(scripted.calls) == 1


@pytest.mark.django_db
def test_a_cancelled_post_is_never_published(scripted):
    post = due_post()
    services.post_cancel(post=post)

    assert services.posts_claim_due(limit=10) == []
    assert scripted.calls == []


@pytest.mark.django_db
def test_backoff_is_exponential_with_full_jitter_and_capped(settings):
    settings.SNS_BACKOFF_BASE, settings.SNS_BACKOFF_CAP = 2, 20
    samples = {attempt: [services.backoff_seconds(attempt) for _ in range(300)] for attempt in (1, 2, 3, 6)}

    assert all(0 <= value <= 2 for value in samples[1])
    assert all(0 <= value <= 4 for value in samples[2])
    assert all(0 <= value <= 8 for value in samples[3])
    assert all(0 <= value <= 20 for value in samples[6])
    assert max(samples[3]) > 4  # it does grow
    assert len({round(value, 6) for value in samples[6]}) > 250  # jittered, not fixed


# --- the reaper ---------------------------------------------------------------------------


def expire_lease(post: SNSPost) -> None:
    SNSPost.objects.filter(pk=post.pk).update(lease_expires_at=timezone.now() - timedelta(hours=1))


def start_call(post: SNSPost, token: str) -> None:
    """The publish task's first step, as if its worker then died mid-call."""
    SNSPost.objects.filter(pk=post.pk, claim_token=token).update(
        call_started_at=timezone.now() - timedelta(hours=1), attempts=1
    )


@pytest.mark.django_db
def test_the_reaper_requeues_an_expired_claim_that_never_called(scripted):
    post = due_post()
    claim(post)
    expire_lease(post)

    assert services.posts_reap_expired_claims() == {"requeued": 1, "retried": 0, "unknown": 0}

    row = fresh(post)
    assert (row.status, row.claim_token, row.attempts, row.last_error) == ("scheduled", None, 0, None)
    assert services.posts_claim_due(limit=10) == [post.pk]


@pytest.mark.django_db
def test_the_reaper_retries_a_call_lost_midway_with_the_same_key_without_using_up_an_attempt(scripted, settings):
    post = due_post(platform="twitter")
    token = claim(post)
    start_call(post, token)
    expire_lease(post)

    assert services.posts_reap_expired_claims() == {"requeued": 0, "retried": 1, "unknown": 0}

    row = fresh(post)
    assert (row.status, row.attempts, row.max_attempts) == ("scheduled", 1, settings.SNS_MAX_ATTEMPTS + 1)
    assert row.last_error.startswith("the worker was lost during the publish call")
    new_token = claim(post)
    assert new_token != token
    assert services.post_publish(post_id=post.pk, token=new_token) == "published"
    assert scripted.calls == [(post.pk, str(post.idempotency_key))]
    assert (fresh(post).attempts, fresh(post).status) == (2, "published")


@pytest.mark.django_db
def test_the_reaper_fails_a_call_lost_midway_as_outcome_unknown_when_keys_are_not_honoured(scripted):
    post = due_post(platform="instagram")
    token = claim(post)
    start_call(post, token)
    expire_lease(post)

    assert services.posts_reap_expired_claims() == {"requeued": 0, "retried": 0, "unknown": 1}

    row = fresh(post)
    assert row.status == "failed"
    assert row.last_error.startswith("outcome unknown")


@pytest.mark.django_db
def test_lost_calls_are_retried_only_a_bounded_number_of_times(scripted, settings):
    settings.SNS_MAX_ATTEMPTS, settings.SNS_MAX_LOST_CALLS = 5, 2
    post = due_post(platform="twitter")
    outcomes = []
    for _ in range(3):
        token = claim(post)
        start_call(post, token)
        expire_lease(post)
        outcomes.append(services.posts_reap_expired_claims())

    assert [o["retried"] for o in outcomes] == [1, 1, 0]
    assert outcomes[2]["unknown"] == 1
    assert fresh(post).status == "failed"


@pytest.mark.django_db
def test_failed_is_final_even_if_a_reaped_call_succeeds_late(scripted):
    post = due_post(platform="instagram")
    token = claim(post)

    def reaped_meanwhile(_post: SNSPost) -> None:
        expire_lease(post)
        services.posts_reap_expired_claims()

    scripted.during_call = [reaped_meanwhile]
    scripted.script = ["ig-77"]

    assert services.post_publish(post_id=post.pk, token=token) == "late"

    row = fresh(post)
    assert (row.status, row.external_id) == ("failed", "ig-77")
    assert row.published_at is None


@pytest.mark.django_db(transaction=True)
def test_the_reaper_skips_a_claim_that_another_transaction_is_changing_and_takes_it_next_time(scripted):
    post = due_post()
    claim(post)
    expire_lease(post)
    locked, release = threading.Event(), threading.Event()

    def hold_the_row() -> None:
        try:
            with transaction.atomic():
                list(SNSPost.objects.select_for_update().filter(pk=post.pk))
                locked.set()
                release.wait(timeout=10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        started = time.monotonic()
        assert services.posts_reap_expired_claims() == {"requeued": 0, "retried": 0, "unknown": 0}
        assert time.monotonic() - started < 1  # skipped, not waited for
    finally:
        release.set()
        holder.join(timeout=10)

    assert services.posts_reap_expired_claims() == {"requeued": 1, "retried": 0, "unknown": 0}


@pytest.mark.django_db
def test_a_live_claim_is_left_alone_by_the_reaper(scripted):
    post = due_post()
    claim(post)

    assert services.posts_reap_expired_claims() == {"requeued": 0, "retried": 0, "unknown": 0}
    assert fresh(post).status == "publishing"


# --- publishers ---------------------------------------------------------------------------


@pytest.fixture
def platform():
    server = FakePlatform().start()
    yield server
    server.stop()


@pytest.mark.django_db
def test_the_webhook_publisher_posts_json_with_the_idempotency_key_and_reads_the_external_id(platform):
    post = due_post(content="Kimchi pop-up on Friday")

    publication = WebhookPublisher(platform.url).publish(post, idempotency_key=str(post.idempotency_key), timeout=5)

    assert publication == Publication(external_id="ext-1")
    assert [call.key for call in platform.calls] == [str(post.idempotency_key)]
    assert platform.calls[0].post_id == post.pk


@pytest.mark.django_db
def test_the_webhook_publisher_sends_the_same_key_on_every_attempt_and_is_published_once(platform):
    post = due_post()
    publisher = WebhookPublisher(platform.url)

    first = publisher.publish(post, idempotency_key=str(post.idempotency_key), timeout=5)
    again = publisher.publish(post, idempotency_key=str(post.idempotency_key), timeout=5)

    assert first == again
    assert platform.published_keys() == {str(post.idempotency_key): 1}
    assert [call.outcome for call in platform.calls] == ["accepted", "replayed"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, TransientPublishError),
        (503, TransientPublishError),
        (429, TransientPublishError),
        (409, TransientPublishError),
        (400, PermanentPublishError),
        (401, PermanentPublishError),
        (404, PermanentPublishError),
        (422, PermanentPublishError),
    ],
)
def test_the_webhook_publisher_maps_answers_to_errors(status, error):
    server = FakePlatform(always_fail_status=status).start()
    try:
        post = due_post()
        with pytest.raises(error, match=f"HTTP {status}"):
            WebhookPublisher(server.url).publish(post, idempotency_key="k", timeout=5)
    finally:
        server.stop()


@pytest.mark.django_db
def test_a_refused_connection_is_transient():
    post = due_post()

    with pytest.raises(TransientPublishError, match="cannot connect"):
        WebhookPublisher(f"http://127.0.0.1:{free_port()}/posts").publish(post, idempotency_key="k", timeout=2)


@pytest.mark.django_db
def test_a_read_timeout_is_an_unknown_outcome():
    server = FakePlatform(delay=(1.5, 1.5)).start()
    try:
        post = due_post()
        with pytest.raises(OutcomeUnknown, match="no answer"):
            WebhookPublisher(server.url).publish(post, idempotency_key="k", timeout=0.3)
    finally:
        server.stop()


def test_publishers_are_chosen_per_platform_with_the_log_publisher_by_default(settings):
    settings.SNS_PUBLISHERS = {"twitter": "sns.publishers.WebhookPublisher"}
    settings.SNS_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    settings.SNS_DEFAULT_PUBLISHER = "sns.publishers.LogPublisher"

    assert isinstance(publishers.publisher_for("twitter"), WebhookPublisher)
    assert isinstance(publishers.publisher_for("threads"), publishers.LogPublisher)
    assert publishers.publisher_for("threads").honours_idempotency_keys


@pytest.mark.django_db
def test_the_log_publisher_logs_the_post(caplog):
    post = due_post(content="Tteokbokki night")

    with caplog.at_level("INFO", logger="sns.publishers"):
        publication = publishers.LogPublisher().publish(post, idempotency_key="key-1", timeout=1)

    assert publication.external_id == "log-key-1"
    assert "Tteokbokki night" in caplog.text


# --- the schedule API's post-commit kick ---------------------------------------------------


def schedule(client, **body):
    return client.post("/api/sns/schedule", {"platform": "twitter", "content": "Hello", **body}, format="json")


@pytest.mark.django_db(transaction=True)
def test_a_post_without_scheduled_at_kicks_the_dispatcher_after_commit(broker, client_for):
    response = schedule(client_for(UserFactory.create()))

    assert response.status_code == 202
    assert queue_length("dispatch") == 1


@pytest.mark.django_db(transaction=True)
def test_a_post_scheduled_ahead_waits_for_the_beat_instead(broker, client_for):
    ahead = (timezone.now() + timedelta(minutes=5)).isoformat()

    response = schedule(client_for(UserFactory.create()), scheduled_at=ahead)

    assert response.status_code == 202
    assert queue_length("dispatch") == 0


@pytest.mark.django_db(transaction=True)
def test_a_rollback_after_scheduling_enqueues_nothing(broker):
    user = UserFactory.create()

    with pytest.raises(RuntimeError):
        rolled_back(
            lambda: services.post_schedule(user=user, platform="twitter", content="Never sent", scheduled_at=None)
        )

    assert queue_length("dispatch") == 0
    assert not SNSPost.objects.filter(user=user).exists()
    # and the same call, committed, does enqueue: the check above can fail
    services.post_schedule(user=user, platform="twitter", content="Sent", scheduled_at=None)
    assert queue_length("dispatch") == 1


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_at_commit_the_post_is_saved_and_the_answer_is_still_202(broker, client_for):
    user = UserFactory.create()

    with broker_unreachable():
        response = schedule(client_for(user))

    assert response.status_code == 202
    post = SNSPost.objects.using("default").get(pk=response.json()["id"])
    assert (post.status, post.next_attempt_at) == ("scheduled", post.scheduled_at)


@pytest.mark.django_db
def test_new_posts_take_the_configured_attempt_limit(settings, user):
    settings.SNS_MAX_ATTEMPTS = 7

    post = services.post_schedule(user=user, platform="twitter", content="Hi", scheduled_at=None)

    assert (post.max_attempts, post.attempts, post.next_attempt_at) == (7, 0, post.scheduled_at)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"platform": "myspace", "content": "Hi"}, "platform"),
        ({"platform": "twitter", "content": ""}, "content"),
        ({"platform": "twitter", "content": "x" * 5001}, "content"),
        ({"platform": "twitter", "content": "Hi", "scheduled_at": "2030-01-01T09:00:00"}, "scheduled_at"),
        ({"platform": "twitter", "content": "Hi", "scheduled_at": "2001-01-01T09:00:00Z"}, "scheduled_at"),
        ({"platform": "twitter", "content": "Hi", "scheduled_at": "2999-01-01T09:00:00Z"}, "scheduled_at"),
        ({"platform": "twitter", "content": "Hi", "scheduled_at": "tomorrow"}, "scheduled_at"),
    ],
)
def test_invalid_schedule_requests_are_400_naming_the_field_and_queue_nothing(client_for, user, body, field):
    response = client_for(user).post("/api/sns/schedule", body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not SNSPost.objects.filter(user=user).exists()
