"""sns: writes and rules for scheduled posts (state machine in API.md and docs/SCHEDULING.md).

Publishing (design C of the scheduling research): the row is the schedule and the outbox. The
dispatcher reaps expired claims, then claims due rows (FOR UPDATE SKIP LOCKED) under a claim
token and a lease and enqueues one publish task per row after commit; the publish task is
fenced on that token and commits `call_started_at` before it calls the publisher. Every state
change is one conditional UPDATE whose row count says whether this caller won.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
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

    # One position for the batch (the claim's commit), rather than one primary query per message.
    headers: Any = {POSITION_HEADER: capture_position().get("required_lsn")}
    sent = 0
    try:
        for post_id in post_ids:
            tasks.publish_post.apply_async((post_id, str(token)), headers=headers)
            sent += 1
    except Exception:
        # Hand back the claims that never got a message, so the next run retries them at once
        # instead of after the lease; those already sent keep theirs.
        SNSPost.objects.filter(
            pk__in=post_ids[sent:], status=STATUS.PUBLISHING, claim_token=token, call_started_at__isnull=True
        ).update(status=STATUS.SCHEDULED, **_RELEASED)
        raise


def posts_claim_due(*, limit: int) -> list[int]:
    """Claim up to `limit` due posts under one token and lease; one publish task each after commit."""
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


def post_publish(*, post_id: int, token: str) -> str:
    """Publish one claimed post, fenced on its claim token; returns what happened.

    Not atomic on purpose: the call start must be committed before the publisher is called, so
    that a worker lost mid-call is told apart from one that never called.
    """
    started = (
        _fence(post_id, token)
        .filter(call_started_at__isnull=True)
        .update(call_started_at=Now(), attempts=F("attempts") + 1, lease_expires_at=Now() + _lease())
    )
    if started != 1:
        # A redelivery, a second beat's duplicate, a reaped claim or a finished post: no side effect.
        metrics.SNS_PUBLISH.labels("stale").inc()
        return "stale"
    post = SNSPost.objects.get(pk=post_id)  # the primary: this task wrote
    publisher = publishers.publisher_for(post.platform)
    try:
        publication = publisher.publish(
            post, idempotency_key=str(post.idempotency_key), timeout=settings.SNS_PUBLISH_TIMEOUT_SECONDS
        )
    except publishers.TransientPublishError as exc:
        return _after_failure(post, token, str(exc), retry=True, outcome="transient")
    except publishers.PermanentPublishError as exc:
        return _after_failure(post, token, str(exc), retry=False, outcome="permanent")
    except Exception as exc:  # OutcomeUnknown, a soft time limit, a publisher bug: maybe accepted
        logger.warning("sns post %s: outcome of the publish call unknown: %r", post_id, exc)
        reason = str(exc) if isinstance(exc, publishers.OutcomeUnknown) else repr(exc)
        return _after_failure(
            post,
            token,
            f"outcome unknown: {reason}",
            retry=publisher.honours_idempotency_keys,
            outcome="unknown",
        )
    published = _fence(post_id, token).update(
        status=STATUS.PUBLISHED,
        published_at=Now(),
        external_id=publication.external_id[:255],
        last_error=None,
        last_error_at=None,
    )
    if not published:
        # Reaped while we were calling (only possible if the lease was shorter than the time
        # limit): the post stays as the reaper left it; keep the platform's id for the record.
        SNSPost.objects.filter(pk=post_id, status=STATUS.FAILED, claim_token=token).update(
            external_id=publication.external_id[:255]
        )
        logger.error("sns post %s was published after its claim was reaped", post_id)
        metrics.SNS_PUBLISH.labels("late").inc()
        return "late"
    scheduled_at, published_at = SNSPost.objects.filter(pk=post_id).values_list("scheduled_at", "published_at").get()
    metrics.SNS_PUBLISH.labels("published").inc()
    if published_at is not None:
        metrics.SNS_PUBLISH_DELAY.observe(max((published_at - scheduled_at).total_seconds(), 0.0))
    return "published"
