"""sns: writes and rules for scheduled posts (state machine in API.md and docs/SCHEDULING.md)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from platform_core.models import User
from sns.models import SNSPost
from softfactory.api import Conflict, Invalid

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
    # Later issue: kick sns.tasks.dispatch_due_posts here with transaction.on_commit(..., robust=True).
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
