"""Publishing in batches, in process (docs/SCHEDULING.md, "The publish task"): one publish task
per chunk of a claim, the call starts marked in one fenced UPDATE for publishers that honour
idempotency keys and one at a time for the others, the successes recorded in one UPDATE, the
time budget, and the webhook publisher's keep-alive connection."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from django.db import connection, connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from sns import services, tasks
from sns.models import SNSPost
from sns.publishers import OutcomeUnknown, Publication, WebhookPublisher
from softfactory import metrics
from tests.celery.fake_platform import FakePlatform
from tests.sns.test_publishing import SCRIPTED, SCRIPTED_WITHOUT_KEYS, ScriptedPublisher, due_post, fresh

WEBHOOK = "sns.publishers.WebhookPublisher"


def claim_all(posts: list[SNSPost]) -> str:
    """Claim exactly these posts as the dispatcher would (one claim); returns its token."""
    assert sorted(services.posts_claim_due(limit=1000)) == sorted(post.pk for post in posts)
    return str(fresh(posts[0]).claim_token)


def counter(outcome: str) -> float:
    return metrics.SNS_PUBLISH.labels(outcome)._value.get()


def delay_count() -> float:
    return next(s.value for s in metrics.SNS_PUBLISH_DELAY.collect()[0].samples if s.name.endswith("_count"))


@pytest.fixture
def scripted():
    ScriptedPublisher.script, ScriptedPublisher.calls, ScriptedPublisher.during_call = [], [], []
    with override_settings(SNS_PUBLISHERS={"twitter": SCRIPTED, "instagram": SCRIPTED_WITHOUT_KEYS}):
        yield ScriptedPublisher


@pytest.fixture
def webhook_platform(settings):
    server = FakePlatform(status_by_post={}).start()
    settings.SNS_PUBLISHERS = dict.fromkeys(SNSPost.Platform.values, WEBHOOK)
    settings.SNS_WEBHOOK_URL = server.url
    yield server
    server.stop()


# --- the batch -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_batch_publishes_every_owned_post_once_with_two_statements(scripted, settings):
    settings.SNS_PUBLISH_THREADS = 4
    posts = [due_post(platform="twitter") for _ in range(6)]
    token = claim_all(posts)
    published_before, delays_before = counter("published"), delay_count()

    with CaptureQueriesContext(connection) as queries:
        outcome = services.posts_publish(post_ids=[post.pk for post in posts], token=token)

    assert outcome == {post.pk: "published" for post in posts}
    assert len(queries) == 2  # one UPDATE marks every call start, one records every success
    assert sorted(pk for pk, _ in scripted.calls) == sorted(post.pk for post in posts)
    rows = [fresh(post) for post in posts]
    assert {(row.status, row.attempts, row.external_id, row.last_error) for row in rows} == {
        ("published", 1, "ext-1", None)
    }
    assert all(row.published_at >= row.scheduled_at for row in rows)
    assert counter("published") - published_before == 6
    assert delay_count() - delays_before == 6


@pytest.mark.django_db
def test_posts_of_a_stale_claim_or_already_published_are_skipped_without_a_call(scripted):
    mine = [due_post(), due_post()]
    token = claim_all(mine)
    theirs = due_post()
    their_token = claim_all([theirs])
    done = due_post(published=True)
    stale_before = counter("stale")

    outcome = services.posts_publish(post_ids=[mine[0].pk, theirs.pk, done.pk, mine[1].pk], token=token)

    assert outcome == {mine[0].pk: "published", mine[1].pk: "published", theirs.pk: "stale", done.pk: "stale"}
    assert sorted(pk for pk, _ in scripted.calls) == sorted(post.pk for post in mine)
    assert (fresh(theirs).status, str(fresh(theirs).claim_token), fresh(theirs).attempts) == (
        "publishing",
        their_token,
        0,
    )
    assert counter("stale") - stale_before == 2
    # A redelivered message of the same chunk calls nothing.
    assert services.posts_publish(post_ids=[post.pk for post in mine], token=token) == {
        post.pk: "stale" for post in mine
    }
    assert len(scripted.calls) == 2


@pytest.mark.django_db
def test_mixed_answers_in_one_batch_give_retry_failed_and_published(webhook_platform):
    retried, refused, accepted = due_post(), due_post(), due_post()
    webhook_platform.status_by_post = {retried.pk: 500, refused.pk: 400}
    token = claim_all([retried, refused, accepted])

    outcome = services.posts_publish(post_ids=[retried.pk, refused.pk, accepted.pk], token=token)

    assert outcome == {retried.pk: "retry", refused.pk: "failed", accepted.pk: "published"}
    rows = {pk: fresh(post) for pk, post in ((p.pk, p) for p in (retried, refused, accepted))}
    assert (rows[retried.pk].status, rows[retried.pk].claim_token, rows[retried.pk].attempts) == ("scheduled", None, 1)
    assert rows[retried.pk].last_error.startswith("HTTP 500 from the webhook")
    assert rows[refused.pk].status == "failed"
    assert rows[refused.pk].last_error.startswith("HTTP 400 from the webhook")
    assert (rows[accepted.pk].status, rows[accepted.pk].external_id) == (
        "published",
        webhook_platform.stored[str(accepted.idempotency_key)]["id"],
    )
    assert webhook_platform.published_keys() == {str(accepted.idempotency_key): 1}


def call_starts_seen_from_another_connection(posts: list[SNSPost]) -> list[bool]:
    seen: list[bool] = []

    def read() -> None:
        try:
            starts = dict(
                SNSPost.objects.using("default")
                .filter(pk__in=[post.pk for post in posts])
                .values_list("pk", "call_started_at")
            )
            seen.extend(starts[post.pk] is not None for post in posts)
        finally:
            connections.close_all()

    reader = threading.Thread(target=read)
    reader.start()
    reader.join(timeout=10)
    return seen


@pytest.mark.django_db(transaction=True)
def test_for_a_publisher_without_keys_each_call_start_is_committed_right_before_its_call(scripted):
    posts = [due_post(platform="instagram") for _ in range(3)]  # ScriptedPublisherWithoutKeys
    token = claim_all(posts)
    seen_at_each_call: list[list[bool]] = []
    scripted.during_call = [lambda _post: seen_at_each_call.append(call_starts_seen_from_another_connection(posts))]

    outcome = services.posts_publish(post_ids=[post.pk for post in posts], token=token)

    assert outcome == {post.pk: "published" for post in posts}
    assert [pk for pk, _ in scripted.calls] == [post.pk for post in posts]
    assert seen_at_each_call == [[True, False, False], [True, True, False], [True, True, True]]


@pytest.mark.django_db(transaction=True)
def test_for_a_publisher_that_honours_keys_every_call_start_is_committed_before_the_first_call(scripted):
    posts = [due_post(platform="twitter") for _ in range(3)]
    token = claim_all(posts)
    seen_at_each_call: list[list[bool]] = []
    scripted.during_call = [lambda _post: seen_at_each_call.append(call_starts_seen_from_another_connection(posts))]

    services.posts_publish(post_ids=[post.pk for post in posts], token=token)

    assert seen_at_each_call == [[True, True, True]] * 3


@pytest.mark.django_db
def test_a_batch_of_both_kinds_of_publisher_publishes_each_post_once(scripted):
    keyed = [due_post(platform="twitter") for _ in range(2)]
    unkeyed = [due_post(platform="instagram") for _ in range(2)]
    token = claim_all(keyed + unkeyed)

    outcome = services.posts_publish(post_ids=[post.pk for post in unkeyed + keyed], token=token)

    assert outcome == {post.pk: "published" for post in keyed + unkeyed}
    assert sorted(pk for pk, _ in scripted.calls) == sorted(post.pk for post in keyed + unkeyed)


class SlowPublisher(ScriptedPublisher):
    """Takes 0.45 s per call."""

    def publish(self, post: SNSPost, *, idempotency_key: str, timeout: float) -> Publication:
        time.sleep(0.45)
        return super().publish(post, idempotency_key=idempotency_key, timeout=timeout)


class SlowPublisherWithoutKeys(SlowPublisher):
    honours_idempotency_keys = False


@pytest.mark.django_db
@pytest.mark.parametrize("platform", ["twitter", "instagram"])
def test_calls_stop_when_the_budget_cannot_fit_another_and_the_rest_is_handed_back(scripted, settings, platform):
    settings.SNS_PUBLISHERS = {
        "twitter": "tests.sns.test_batch_publish.SlowPublisher",
        "instagram": "tests.sns.test_batch_publish.SlowPublisherWithoutKeys",
    }
    settings.SNS_PUBLISH_THREADS = 1
    settings.SNS_PUBLISH_TIMEOUT_SECONDS = 1.0
    posts = [due_post(platform=platform) for _ in range(5)]
    token = claim_all(posts)
    handed_before = counter("handed_back")

    # Budget 2.6 s, calls up to 1 s, a 0.4 s reserve: calls may start in the first 1.2 s only.
    started = time.monotonic()
    outcome = services.posts_publish(post_ids=[post.pk for post in posts], token=token, budget_seconds=2.6)
    elapsed = time.monotonic() - started

    assert elapsed < 2.6
    called = [pk for pk, _ in scripted.calls]
    assert called == [post.pk for post in posts[:3]]  # started at 0, 0.45 and 0.9 s; not at 1.35
    assert outcome == {post.pk: "published" if post.pk in called else "handed_back" for post in posts}
    for post in posts[3:]:
        row = fresh(post)
        assert (row.status, row.attempts, row.claim_token, row.call_started_at, row.lease_expires_at) == (
            "scheduled",
            0,
            None,
            None,
            None,
        )
    assert counter("handed_back") - handed_before == 2
    # Due again at once: the next claim takes them.
    assert sorted(services.posts_claim_due(limit=10)) == sorted(post.pk for post in posts[3:])


@pytest.mark.django_db
def test_calls_still_running_at_the_deadline_count_as_outcome_unknown(scripted, settings):
    settings.SNS_PUBLISHERS = {"twitter": "tests.sns.test_batch_publish.SlowPublisher"}
    settings.SNS_PUBLISH_THREADS = 2
    settings.SNS_PUBLISH_TIMEOUT_SECONDS = 0.1  # a publisher that overruns its timeout
    posts = [due_post(platform="twitter") for _ in range(2)]
    token = claim_all(posts)

    outcome = services.posts_publish(post_ids=[post.pk for post in posts], token=token, budget_seconds=0.3)

    assert outcome == {post.pk: "retry" for post in posts}  # keys honoured: retried with the same key
    assert {fresh(post).last_error.split(" (")[0] for post in posts} == {
        "outcome unknown: no answer before the task's time budget ran out"
    }
    time.sleep(0.5)  # let the overrunning calls end before the next test uses the pool


@pytest.mark.django_db
def test_the_single_post_task_of_a_rolling_deploy_still_publishes(scripted):
    post = due_post()
    token = claim_all([post])

    assert tasks.publish_post(post.pk, token) == "published"
    assert tasks.publish_post(post.pk, token) == "stale"
    assert fresh(post).status == "published"
    assert len(scripted.calls) == 1


@pytest.mark.django_db
def test_the_batch_task_publishes_its_chunk(scripted):
    posts = [due_post() for _ in range(3)]
    token = claim_all(posts)

    assert tasks.publish_posts([post.pk for post in posts], token) == {post.pk: "published" for post in posts}
    assert tasks.publish_posts([post.pk for post in posts], str(uuid.uuid4())) == {post.pk: "stale" for post in posts}


# --- the webhook publisher's keep-alive connection -------------------------------------------


@pytest.mark.django_db
def test_the_webhook_publisher_reuses_one_keep_alive_connection():
    server = FakePlatform().start()
    try:
        publisher = WebhookPublisher(server.url)
        posts = [due_post() for _ in range(5)]
        for post in posts:
            publisher.publish(post, idempotency_key=str(post.idempotency_key), timeout=5)

        assert server.connections == 1
        assert server.published_keys() == {str(post.idempotency_key): 1 for post in posts}
    finally:
        server.stop()


@pytest.mark.django_db
@pytest.mark.parametrize("reset", [False, True])
def test_an_idle_connection_the_server_closed_is_replaced_without_a_repeated_call(reset):
    server = FakePlatform(idle_timeout=0.2, reset_idle=reset).start()
    try:
        publisher = WebhookPublisher(server.url)
        first, second = due_post(), due_post()
        publisher.publish(first, idempotency_key=str(first.idempotency_key), timeout=5)
        time.sleep(0.6)  # the server closes the idle connection

        publication = publisher.publish(second, idempotency_key=str(second.idempotency_key), timeout=5)

        assert publication.external_id == server.stored[str(second.idempotency_key)]["id"]
        assert server.connections == 2
        assert [call.post_id for call in server.calls] == [first.pk, second.pk]
        assert [call.outcome for call in server.calls] == ["accepted", "accepted"]
    finally:
        server.stop()


class BlindWebhookPublisher(WebhookPublisher):
    """Doesn't look at an idle socket before reusing it: the reset shows up while sending."""

    @staticmethod
    def _dropped(sock) -> bool:
        return False


@pytest.mark.django_db
def test_a_reset_connection_that_fails_while_sending_is_sent_once_more_on_a_new_one():
    server = FakePlatform(idle_timeout=0.2, reset_idle=True).start()
    try:
        publisher = BlindWebhookPublisher(server.url)
        first, second = due_post(), due_post()
        publisher.publish(first, idempotency_key=str(first.idempotency_key), timeout=5)
        time.sleep(0.6)  # the server resets the idle connection

        publisher.publish(second, idempotency_key=str(second.idempotency_key), timeout=5)

        assert server.connections == 2
        assert [call.post_id for call in server.calls] == [first.pk, second.pk]  # nothing repeated
        assert server.published_keys() == {str(first.idempotency_key): 1, str(second.idempotency_key): 1}
    finally:
        server.stop()


@pytest.mark.django_db
def test_after_an_error_answer_the_connection_is_dropped():
    post, failing = due_post(), due_post()
    server = FakePlatform(status_by_post={failing.pk: 503}).start()
    try:
        publisher = WebhookPublisher(server.url)
        with pytest.raises(Exception, match="HTTP 503"):
            publisher.publish(failing, idempotency_key=str(failing.idempotency_key), timeout=5)
        publisher.publish(post, idempotency_key=str(post.idempotency_key), timeout=5)

        assert server.connections == 2
    finally:
        server.stop()


@pytest.mark.django_db
def test_after_a_read_timeout_the_next_call_gets_its_own_answer_on_a_new_connection():
    server = FakePlatform(delay=(0.6, 0.6)).start()
    try:
        publisher = WebhookPublisher(server.url)
        slow, next_post = due_post(), due_post()
        with pytest.raises(OutcomeUnknown):
            publisher.publish(slow, idempotency_key=str(slow.idempotency_key), timeout=0.2)
        publication = publisher.publish(next_post, idempotency_key=str(next_post.idempotency_key), timeout=5)

        assert publication.external_id == server.stored[str(next_post.idempotency_key)]["id"]
        assert server.connections == 2
    finally:
        server.stop()


@pytest.mark.django_db
def test_each_thread_keeps_its_own_connection():
    server = FakePlatform(delay=(0.05, 0.05)).start()
    try:
        publisher = WebhookPublisher(server.url)
        posts = [due_post() for _ in range(6)]
        errors: list[BaseException] = []

        def publish(mine: list[SNSPost]) -> None:
            try:
                for post in mine:
                    publisher.publish(post, idempotency_key=str(post.idempotency_key), timeout=5)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=publish, args=(posts[i::2],)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)

        assert errors == []
        assert server.connections == 2
        assert len(server.published_keys()) == 6
    finally:
        server.stop()
