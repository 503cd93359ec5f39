"""sns services called directly: the rules hold whoever calls them (API, admin, tasks)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from sns import services
from sns.models import SNSPost
from softfactory.api import Conflict, Invalid
from tests.sns.factories import SNSPostFactory

pytestmark = pytest.mark.django_db


def schedule(user, **overrides):
    fields = {"platform": "twitter", "content": "hello", "scheduled_at": timezone.now() + timedelta(hours=1)}
    return services.post_schedule(user=user, **{**fields, **overrides})


def test_post_schedule_stores_a_due_time_equal_to_the_scheduled_time(user):
    post = schedule(user)
    post.refresh_from_db()
    assert (post.status, post.attempts, post.next_attempt_at) == ("scheduled", 0, post.scheduled_at)


def test_an_unknown_platform_is_refused_by_the_database_and_reported_as_400(user):
    with pytest.raises(Invalid) as refused:
        schedule(user, platform="myspace")

    assert refused.value.field == "platform"
    # the savepoint kept the surrounding transaction usable
    assert SNSPost.objects.count() == 0


@pytest.mark.parametrize("content", ["", "   ", "x" * 5001, "a\x00b"])
def test_post_schedule_refuses_bad_content(user, content):
    with pytest.raises(Invalid) as refused:
        schedule(user, content=content)
    assert refused.value.field == "content"


@pytest.mark.parametrize(
    "scheduled_at",
    [
        datetime(2030, 1, 1, 9, 0),  # noqa: DTZ001 - naive on purpose
        timezone.now() - timedelta(seconds=1),
        timezone.now() + timedelta(days=366),  # a margin: parameters are computed at collection
    ],
    ids=["naive", "past", "too far ahead"],
)
def test_post_schedule_refuses_bad_times(user, scheduled_at):
    with pytest.raises(Invalid) as refused:
        schedule(user, scheduled_at=scheduled_at)
    assert refused.value.field == "scheduled_at"
    assert not SNSPost.objects.exists()


def test_post_cancel_is_a_compare_and_set_on_the_scheduled_status(user):
    post = SNSPostFactory.create(user=user)
    stale_copy = SNSPost.objects.get(pk=post.pk)

    assert services.post_cancel(post=post).status == SNSPost.Status.CANCELLED
    # a caller holding an old "scheduled" copy still can't cancel twice
    with pytest.raises(Conflict) as refused:
        services.post_cancel(post=stale_copy)
    assert refused.value.code == "post_not_cancellable"


def test_cancelling_in_bulk_touches_only_scheduled_posts(user):
    scheduled = SNSPostFactory.create_batch(2, user=user)
    published = SNSPostFactory.create(user=user, published=True)
    publishing = SNSPostFactory.create(user=user, publishing=True)

    cancelled = services.posts_cancel_scheduled(post_ids=[p.pk for p in [*scheduled, published, publishing]])

    assert cancelled == 2
    statuses = dict(SNSPost.objects.values_list("pk", "status"))
    assert [statuses[p.pk] for p in scheduled] == ["cancelled", "cancelled"]
    assert (statuses[published.pk], statuses[publishing.pk]) == ("published", "publishing")
