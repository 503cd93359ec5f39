"""`manage.py seed_sns` at demo scale: COPY-loaded posts that obey the state machine."""

from __future__ import annotations

import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count
from django.utils import timezone

from sns.models import SNSPost
from tests.platform_core.factories import UserFactory

pytestmark = pytest.mark.django_db


def seed(**options) -> str:
    out = StringIO()
    call_command("seed_sns", stdout=out, **options)
    return out.getvalue()


def test_the_demo_seed_creates_30_posts_spread_over_the_users_and_reports_its_timing():
    users = UserFactory.create_batch(4)

    output = seed(scale="demo")

    assert SNSPost.objects.count() == 30
    per_user = dict(SNSPost.objects.values_list("user").annotate(n=Count("id")))
    assert set(per_user) == {u.pk for u in users}
    assert min(per_user.values()) >= 7
    assert "30 posts over 4 users" in output
    assert "posts in" in output
    assert "rows/s" in output


def test_seeded_posts_hold_every_status_consistently_with_the_state_machine():
    UserFactory.create_batch(2)
    seed(scale="demo", random_seed=7)
    now = timezone.now()
    posts = list(SNSPost.objects.all())

    assert {p.status for p in posts} == set(SNSPost.Status.values)
    for post in posts:
        assert post.created_at <= post.scheduled_at
        if post.status == SNSPost.Status.PUBLISHED:
            assert post.published_at is not None
            assert post.published_at >= post.scheduled_at
            assert post.attempts >= 1
            assert post.last_error is None
        else:
            assert post.published_at is None
        if post.status == SNSPost.Status.FAILED:
            assert post.last_error
        if post.status == SNSPost.Status.PUBLISHING:
            assert post.claim_token is not None
            assert post.lease_expires_at is not None
            assert post.claimed_at is not None
            assert post.lease_expires_at > post.claimed_at
        if post.status == SNSPost.Status.SCHEDULED:
            # due in the future, or a retry waiting for its backoff
            assert post.scheduled_at > now or (post.attempts >= 1 and post.next_attempt_at > now)
    scheduled = [p for p in posts if p.status == SNSPost.Status.SCHEDULED]
    assert sum(p.scheduled_at > now for p in scheduled) > len(scheduled) / 2


def test_every_seeded_post_has_its_own_idempotency_key_even_when_seeded_twice_with_one_seed():
    UserFactory.create()
    seed(scale="demo", random_seed=1)
    seed(scale="demo", random_seed=1)

    keys = list(SNSPost.objects.values_list("idempotency_key", flat=True))
    assert len(keys) == 60
    assert len(set(keys)) == 60
    assert all(key.version == 4 and key.variant == uuid.RFC_4122 for key in keys)


def test_seeding_without_users_asks_for_the_user_seed_first():
    with pytest.raises(CommandError, match=r"run manage.py seed first"):
        seed(scale="demo")
    assert not SNSPost.objects.exists()


def test_the_small_scale_seeds_ten_thousand_posts():
    UserFactory.create_batch(3)
    output = seed(scale="small")
    assert SNSPost.objects.count() == 10_000
    assert "10,000 posts in" in output
