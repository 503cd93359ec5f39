"""sns: writes and rules for scheduled posts (state machine in API.md and docs/SCHEDULING.md).

Publishing (design C of the scheduling research): the row is the schedule and the outbox. The
dispatcher reaps expired claims, then claims due rows (FOR UPDATE SKIP LOCKED) under a claim
token and a lease and enqueues one publish task per chunk of rows after commit; the publish
task is fenced on that token and commits `call_started_at` before it calls the publisher. Every state
change is one conditional UPDATE whose row count says whether this caller won.
"""

from __future__ import annotations

import logging
import os
import random
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, QuerySet
from django.db.models.functions import Now
from django.utils import timezone

from platform_core.models import User
from sns import publishers
from sns.models import SNSPost
from softfactory import metrics
from softfactory.api import Conflict, Invalid
from softfactory.celery import POSITION_HEADER
from softfactory.db_router import capture_position

logger = logging.getLogger(__name__)

CONTENT_MAX_LENGTH = 5000
MAX_SCHEDULE_AHEAD = timedelta(days=365)


def _utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _check_content(content: str) -> None:
    if not content.strip():
        raise Invalid("This field may not be blank.", field="content")
    if len(content) > CONTENT_MAX_LENGTH:
        raise Invalid(f"Ensure this field has no more than {CONTENT_MAX_LENGTH} characters.", field="content")
    if "\x00" in content:
        raise Invalid("Null characters are not allowed.", field="content")


def _check_scheduled_at(scheduled_at: datetime, *, now: datetime) -> None:
    if timezone.is_naive(scheduled_at):
        raise Invalid("Timestamps must include a UTC offset, e.g. 2030-01-01T09:00:00+09:00.", field="scheduled_at")
    if scheduled_at <= now:
        raise Invalid(
            f"scheduled_at must be in the future (server time is {_utc_iso(now)}); omit scheduled_at to publish now.",
            field="scheduled_at",
        )
    if scheduled_at > now + MAX_SCHEDULE_AHEAD:
        raise Invalid(
            f"scheduled_at may be at most 365 days ahead (latest allowed now: {_utc_iso(now + MAX_SCHEDULE_AHEAD)}).",
            field="scheduled_at",
        )


@transaction.atomic
def post_schedule(*, user: User, platform: str, content: str, scheduled_at: datetime | None) -> SNSPost:
    """Schedule a post for `scheduled_at` (now when None); the dispatcher publishes it when due."""
    now = timezone.now()
    _check_content(content)
    if scheduled_at is None:
        scheduled_at = now
    else:
        _check_scheduled_at(scheduled_at, now=now)
    post = SNSPost(
        user=user,
        platform=platform,
        content=content,
        status=SNSPost.Status.SCHEDULED,
        scheduled_at=scheduled_at,
        next_attempt_at=scheduled_at,
        attempts=0,
        max_attempts=settings.SNS_MAX_ATTEMPTS,
        created_at=now,
    )
    try:
        with transaction.atomic():  # a savepoint: the caller's transaction stays usable
            post.save(force_insert=True)
    except IntegrityError as exc:
        # The table's CHECK constraint is the authority on platforms.
        if getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) == "snspost_platform_valid":
            raise Invalid(f"{platform[:50]!r} is not a valid choice.", field="platform") from exc
        raise
    if scheduled_at <= now:
        # Due at once: wake the dispatcher instead of waiting for the next beat tick. robust=True:
        # with the broker down the post is saved all the same, and the next tick publishes it.
        transaction.on_commit(kick_dispatcher, robust=True)
    return post


@transaction.atomic
def post_cancel(*, post: SNSPost) -> SNSPost:
    """Cancel a scheduled post (compare-and-set); any other status is a 409."""
    cancelled = SNSPost.objects.filter(pk=post.pk, status=SNSPost.Status.SCHEDULED).update(
        status=SNSPost.Status.CANCELLED
    )
    current = SNSPost.objects.get(pk=post.pk)
    if cancelled != 1:
        raise Conflict(
            f"Only a scheduled post can be cancelled; this one is {current.status}.", code="post_not_cancellable"
        )
    return current


@transaction.atomic
def posts_cancel_scheduled(*, post_ids: Iterable[int]) -> int:
    """Cancel those of the posts that are still scheduled (one compare-and-set); returns how many."""
    return SNSPost.objects.filter(pk__in=list(post_ids), status=SNSPost.Status.SCHEDULED).update(
        status=SNSPost.Status.CANCELLED
    )


# --- publishing (docs/SCHEDULING.md) ----------------------------------------------------

STATUS = SNSPost.Status
LOST_CALL_RETRY = "the worker was lost during the publish call; retrying with the same idempotency key"
LOST_CALL_UNKNOWN = "outcome unknown: the worker was lost during the publish call (not retried: it could publish twice)"


def kick_dispatcher() -> None:
    """Ask for a dispatcher run now (after a commit); a failure only delays the post to the next tick."""
    from sns import tasks

    tasks.dispatch_due_posts.apply_async(retry=False, expires=10)


def backoff_seconds(attempt: int) -> float:
    """Delay before retry number `attempt`: exponential with full jitter, capped."""
    ceiling = min(settings.SNS_BACKOFF_CAP, settings.SNS_BACKOFF_BASE * 2 ** max(attempt - 1, 0))
    return random.uniform(0, ceiling)


def _lease() -> timedelta:
    return timedelta(seconds=settings.SNS_LEASE_SECONDS)


_RELEASED = {"claim_token": None, "claimed_at": None, "lease_expires_at": None, "call_started_at": None}


@transaction.atomic
def posts_reap_expired_claims(*, limit: int | None = None) -> dict[str, int]:
    """Recover claims whose lease ran out (their worker died or their message was lost).

    Never called -> scheduled again. Died mid-call -> scheduled again with the same idempotency
    key where the publisher honours keys (a granted retry: it doesn't use up an attempt, at most
    SNS_MAX_LOST_CALLS times), else failed "outcome unknown". The time limits keep a live worker
    from still being in its call when the lease expires.
    """
    # One locked set, decided once: Now() is per statement, so three UPDATEs each testing the
    # lease could split a claim between "not expired yet" and "expired", and fail a post that
    # should have been retried. SKIP LOCKED: a row being changed right now is the next run's.
    expired = list(
        SNSPost.objects.select_for_update(skip_locked=True)
        .filter(status=STATUS.PUBLISHING, lease_expires_at__lt=Now())
        .order_by("lease_expires_at", "id")
        .values_list("pk", flat=True)[: limit or settings.SNS_DISPATCH_BATCH]
    )
    if not expired:
        return {"requeued": 0, "retried": 0, "unknown": 0}
    reaped = SNSPost.objects.filter(pk__in=expired, status=STATUS.PUBLISHING)
    requeued = reaped.filter(call_started_at__isnull=True).update(
        status=STATUS.SCHEDULED, next_attempt_at=Now(), **_RELEASED
    )
    retried = reaped.filter(
        call_started_at__isnull=False,
        platform__in=publishers.platforms_honouring_keys(),
        max_attempts__lt=settings.SNS_MAX_ATTEMPTS + settings.SNS_MAX_LOST_CALLS,
    ).update(
        status=STATUS.SCHEDULED,
        next_attempt_at=Now(),
        max_attempts=F("max_attempts") + 1,
        last_error=LOST_CALL_RETRY,
        last_error_at=Now(),
        **_RELEASED,
    )
    unknown = reaped.filter(call_started_at__isnull=False).update(
        status=STATUS.FAILED, last_error=LOST_CALL_UNKNOWN, last_error_at=Now()
    )
    logger.warning("reaped expired claims: %s requeued, %s retried, %s unknown", requeued, retried, unknown)
    metrics.SNS_PUBLISH.labels("lost_retry").inc(retried)
    metrics.SNS_PUBLISH.labels("unknown").inc(unknown)
    return {"requeued": requeued, "retried": retried, "unknown": unknown}


def _enqueue_publish(post_ids: list[int], token: uuid.UUID) -> None:
    from sns import tasks

    # One position for the claim (its commit), rather than one primary query per message; one
    # message per chunk, so a prefork worker's processes share a big claim.
    headers: Any = {POSITION_HEADER: capture_position().get("required_lsn")}
    chunk = max(settings.SNS_PUBLISH_CHUNK, 1)
    sent = 0
    try:
        while sent < len(post_ids):
            tasks.publish_posts.apply_async((post_ids[sent : sent + chunk], str(token)), headers=headers)
            sent += chunk
    except Exception:
        # Hand back the claims that never got a message, so the next run retries them at once
        # instead of after the lease; those already sent keep theirs.
        SNSPost.objects.filter(
            pk__in=post_ids[sent:], status=STATUS.PUBLISHING, claim_token=token, call_started_at__isnull=True
        ).update(status=STATUS.SCHEDULED, **_RELEASED)
        raise


def posts_claim_due(*, limit: int) -> list[int]:
    """Claim up to `limit` due posts under one token and lease; publish tasks (one per chunk) after commit."""
    token = uuid.uuid4()
    with transaction.atomic():
        # SKIP LOCKED: concurrent dispatchers (two beats, kicks) claim disjoint rows without waiting.
        due = (
            SNSPost.objects.select_for_update(skip_locked=True)
            .filter(status=STATUS.SCHEDULED, next_attempt_at__lte=Now())
            .order_by("next_attempt_at", "id")
            .values_list("pk", flat=True)
        )
        post_ids = list(due[:limit])
        if not post_ids:
            return []
        SNSPost.objects.filter(pk__in=post_ids, status=STATUS.SCHEDULED).update(
            status=STATUS.PUBLISHING,
            claim_token=token,
            claimed_at=Now(),
            lease_expires_at=Now() + _lease(),
            call_started_at=None,
        )
        # A lambda, not functools.partial: Django logs a robust callback's failure by its __qualname__.
        transaction.on_commit(lambda: _enqueue_publish(post_ids, token), robust=True)
    return post_ids


def posts_dispatch() -> dict[str, int]:
    """One dispatcher run: reap expired claims, then claim due posts batch by batch."""
    outcome = posts_reap_expired_claims()
    claimed = 0
    for _batch in range(settings.SNS_DISPATCH_MAX_BATCHES):
        batch = posts_claim_due(limit=settings.SNS_DISPATCH_BATCH)
        claimed += len(batch)
        if len(batch) < settings.SNS_DISPATCH_BATCH:
            break
    return {**outcome, "claimed": claimed}


def _fence(post_id: int, token: str) -> QuerySet[SNSPost]:
    return SNSPost.objects.filter(pk=post_id, status=STATUS.PUBLISHING, claim_token=token)


def _after_failure(post: SNSPost, token: str, error: str, *, retry: bool, outcome: str) -> str:
    error = f"{error} (attempt {post.attempts}/{post.max_attempts})"
    if retry and post.attempts < post.max_attempts:
        delay = timedelta(seconds=backoff_seconds(post.attempts))
        updated = _fence(post.pk, token).update(
            status=STATUS.SCHEDULED,
            next_attempt_at=Now() + delay,
            last_error=error,
            last_error_at=Now(),
            **_RELEASED,
        )
        result = "retry"
    else:
        updated = _fence(post.pk, token).update(status=STATUS.FAILED, last_error=error, last_error_at=Now())
        result = "failed"
    if not updated:
        return "stale"  # the claim was reaped meanwhile; the reaper's decision stands
    metrics.SNS_PUBLISH.labels(outcome).inc()
    return result


# A call outcome: what the publisher returned or raised, or NOT_CALLED (the time budget ran out
# before the call could start).
NOT_CALLED = object()
_Outcome = Any


def _write_connection() -> BaseDatabaseWrapper:
    return connections[router.db_for_write(SNSPost)]  # the router also notes the write


def _mark_call_start(post_ids: list[int], token: str, *, platforms: list[str] | None) -> list[SNSPost]:
    """One fenced UPDATE ... RETURNING: commit the call start of the posts this claim still owns.

    Returns them as model instances (what the publisher needs), so no SELECT follows. A post
    another claim owns, already started or finished, is left out: calling it is someone else's job.
    """
    if not post_ids:
        return []
    fields = SNSPost._meta.concrete_fields
    connection = _write_connection()
    quote = connection.ops.quote_name
    platform_filter = "AND platform = ANY(%s)" if platforms is not None else ""
    sql = (
        f"UPDATE {quote(SNSPost._meta.db_table)} SET call_started_at = STATEMENT_TIMESTAMP(), "  # noqa: S608 - quoted model metadata
        "attempts = attempts + 1, lease_expires_at = STATEMENT_TIMESTAMP() + make_interval(secs => %s) "
        "WHERE id = ANY(%s) AND status = %s AND claim_token = %s::uuid AND call_started_at IS NULL "
        f"{platform_filter} RETURNING {', '.join(quote(field.column) for field in fields)}"
    )
    params: list[Any] = [float(settings.SNS_LEASE_SECONDS), list(post_ids), STATUS.PUBLISHING, str(token)]
    if platforms is not None:
        params.append(platforms)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    names = [field.attname for field in fields]
    posts = [SNSPost.from_db(connection.alias, names, row) for row in rows]
    order = {post_id: index for index, post_id in enumerate(post_ids)}
    return sorted(posts, key=lambda post: order[post.pk])


def _hand_back(post_ids: list[int], token: str, *, started: bool) -> int:
    """Release posts this claim owns but never called, due again at once (fenced).

    `started`: their call start was marked (bulk) and is undone, attempt included.
    """
    if not post_ids:
        return 0
    owned = SNSPost.objects.filter(pk__in=post_ids, status=STATUS.PUBLISHING, claim_token=token)
    if started:
        handed = owned.filter(call_started_at__isnull=False).update(
            status=STATUS.SCHEDULED, next_attempt_at=Now(), attempts=F("attempts") - 1, **_RELEASED
        )
    else:
        handed = owned.filter(call_started_at__isnull=True).update(
            status=STATUS.SCHEDULED, next_attempt_at=Now(), **_RELEASED
        )
    metrics.SNS_PUBLISH.labels("handed_back").inc(handed)
    return handed


def _call(post: SNSPost, *, last_start: float) -> _Outcome:
    """One publisher call, or NOT_CALLED when it could no longer finish inside the budget."""
    if time.monotonic() > last_start:
        return NOT_CALLED
    publisher = publishers.publisher_for(post.platform)
    try:
        return publisher.publish(
            post, idempotency_key=str(post.idempotency_key), timeout=settings.SNS_PUBLISH_TIMEOUT_SECONDS
        )
    except Exception as exc:  # classified by _record, as the single-post path always did
        return exc


_pool: tuple[tuple[int, int], ThreadPoolExecutor] | None = None


def _call_pool() -> ThreadPoolExecutor:
    # One pool per process, created after the fork (a prefork child must not inherit threads);
    # its threads live on, and with them the publishers' keep-alive connections.
    global _pool
    key = (os.getpid(), settings.SNS_PUBLISH_THREADS)
    if _pool is None or _pool[0] != key:
        _pool = (key, ThreadPoolExecutor(max_workers=settings.SNS_PUBLISH_THREADS, thread_name_prefix="sns"))
    return _pool[1]


def _call_all(posts: list[SNSPost], *, last_start: float, deadline: float) -> dict[int, _Outcome]:
    """Call the publisher for each post, concurrently in a small pool when there are several."""
    if len(posts) == 1 or settings.SNS_PUBLISH_THREADS <= 1:
        return {post.pk: _call(post, last_start=last_start) for post in posts}
    futures = {post.pk: _call_pool().submit(_call, post, last_start=last_start) for post in posts}
    wait(futures.values(), timeout=max(deadline - time.monotonic(), 0.0))
    return {
        pk: future.result()
        if future.done()
        else publishers.OutcomeUnknown("no answer before the task's time budget ran out")
        for pk, future in futures.items()
    }


def _record_successes(published: dict[int, SNSPost], token: str, outcomes: dict[int, _Outcome]) -> dict[int, str]:
    """All successes in one fenced UPDATE ... FROM (VALUES ...) RETURNING the delay's inputs."""
    if not published:
        return {}
    connection = _write_connection()
    rows = ", ".join(["(%s::bigint, %s::varchar)"] * len(published))
    sql = (
        f"UPDATE {connection.ops.quote_name(SNSPost._meta.db_table)} AS post "  # noqa: S608 - quoted model metadata
        "SET status = %s, published_at = STATEMENT_TIMESTAMP(), external_id = done.external_id, "
        f"last_error = NULL, last_error_at = NULL FROM (VALUES {rows}) AS done (id, external_id) "
        "WHERE post.id = done.id AND post.status = %s AND post.claim_token = %s::uuid "
        "RETURNING post.id, post.scheduled_at, post.published_at"
    )
    params: list[Any] = [STATUS.PUBLISHED]
    for pk in published:
        params += [pk, outcomes[pk].external_id[:255]]
    params += [STATUS.PUBLISHING, str(token)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        recorded = cursor.fetchall()
    results: dict[int, str] = {}
    for pk, scheduled_at, published_at in recorded:
        results[pk] = "published"
        metrics.SNS_PUBLISH.labels("published").inc()
        metrics.SNS_PUBLISH_DELAY.observe(max((published_at - scheduled_at).total_seconds(), 0.0))
    for pk in published.keys() - results.keys():
        # Reaped while we were calling (only possible if the lease was shorter than the time
        # limit): the post stays as the reaper left it; keep the platform's id for the record.
        SNSPost.objects.filter(pk=pk, status=STATUS.FAILED, claim_token=token).update(
            external_id=outcomes[pk].external_id[:255]
        )
        logger.error("sns post %s was published after its claim was reaped", pk)
        metrics.SNS_PUBLISH.labels("late").inc()
        results[pk] = "late"
    return results


def _record(posts: list[SNSPost], token: str, outcomes: dict[int, _Outcome], *, started: bool) -> dict[int, str]:
    """Record the outcomes of calls: successes at once, failures per post, never-called handed back."""
    results: dict[int, str] = {}
    published: dict[int, SNSPost] = {}
    not_called: list[int] = []
    for post in posts:
        outcome = outcomes[post.pk]
        if outcome is NOT_CALLED:
            not_called.append(post.pk)
        elif isinstance(outcome, publishers.Publication):
            published[post.pk] = post
        elif isinstance(outcome, publishers.TransientPublishError):
            results[post.pk] = _after_failure(post, token, str(outcome), retry=True, outcome="transient")
        elif isinstance(outcome, publishers.PermanentPublishError):
            results[post.pk] = _after_failure(post, token, str(outcome), retry=False, outcome="permanent")
        else:  # OutcomeUnknown, a soft time limit, a publisher bug: maybe accepted
            logger.warning("sns post %s: outcome of the publish call unknown: %r", post.pk, outcome)
            reason = str(outcome) if isinstance(outcome, publishers.OutcomeUnknown) else repr(outcome)
            results[post.pk] = _after_failure(
                post,
                token,
                f"outcome unknown: {reason}",
                retry=publishers.publisher_for(post.platform).honours_idempotency_keys,
                outcome="unknown",
            )
    results.update(_record_successes(published, token, outcomes))
    _hand_back(not_called, token, started=started)
    results.update(dict.fromkeys(not_called, "handed_back"))
    return results


def _last_call_start(budget_seconds: float) -> tuple[float, float]:
    """(latest monotonic time a call may start, deadline) for a task with `budget_seconds`.

    A call started by then ends (SNS_PUBLISH_TIMEOUT_SECONDS at worst) with a reserve left for
    recording the outcomes before the budget (the soft time limit) runs out.
    """
    now = time.monotonic()
    timeout = settings.SNS_PUBLISH_TIMEOUT_SECONDS
    reserve = min(5.0, max(budget_seconds - timeout, 0.0) / 4)
    return now + budget_seconds - timeout - reserve, now + budget_seconds - reserve


def posts_publish(*, post_ids: list[int], token: str, budget_seconds: float | None = None) -> dict[int, str]:
    """Publish a chunk of claimed posts, fenced on their claim token; returns what happened to each.

    Publishers that honour idempotency keys: one UPDATE marks every call start, the calls run in
    a small thread pool, one UPDATE records every success. A worker lost midway leaves started
    posts, which the reaper retries with the same key. Other publishers: mark, call and record
    one post at a time (each start committed right before its call), so a crash never fails a
    post that was never called. Calls start only while they can finish inside `budget_seconds`
    (the soft time limit); the posts left over are handed back, due again at once.
    Not atomic on purpose: a call start must be committed before its call.
    """
    last_start, deadline = _last_call_start(budget_seconds or settings.CELERY_TASK_SOFT_TIME_LIMIT)
    results: dict[int, str] = {}
    keyed = _mark_call_start(post_ids, token, platforms=publishers.platforms_honouring_keys())
    if keyed:
        outcomes = _call_all(keyed, last_start=last_start, deadline=deadline)
        results.update(_record(keyed, token, outcomes, started=True))
    rest = [pk for pk in post_ids if pk not in results]
    for index, post_id in enumerate(rest):
        if time.monotonic() > last_start:
            handed = rest[index:]
            _hand_back(handed, token, started=False)
            results.update(dict.fromkeys(handed, "handed_back"))
            break
        started = _mark_call_start([post_id], token, platforms=None)
        if not started:
            # A redelivery, a second beat's duplicate, a reaped claim or a finished post: no side effect.
            metrics.SNS_PUBLISH.labels("stale").inc()
            results[post_id] = "stale"
            continue
        (post,) = started
        results.update(_record(started, token, {post.pk: _call(post, last_start=last_start)}, started=True))
    return results


def post_publish(*, post_id: int, token: str) -> str:
    """Publish one claimed post (the batch path with one id); returns what happened."""
    return posts_publish(post_ids=[post_id], token=token)[post_id]
