"""Factories for scheduled posts, in every status of the state machine (API.md "sns")."""

from __future__ import annotations

import uuid
from datetime import timedelta

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from sns.models import SNSPost
from tests.platform_core.factories import UserFactory


class SNSPostFactory(DjangoModelFactory[SNSPost]):
    """A scheduled post due tomorrow."""

    class Meta:
        model = SNSPost

    user = factory.SubFactory(UserFactory)
    platform = SNSPost.Platform.TWITTER
    content = factory.Sequence(lambda n: f"Weekend menu drop #{n}")
    status = SNSPost.Status.SCHEDULED
    scheduled_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))
    next_attempt_at = factory.SelfAttribute("scheduled_at")
    attempts = 0

    class Params:
        published = factory.Trait(
            status=SNSPost.Status.PUBLISHED,
            scheduled_at=factory.LazyFunction(lambda: timezone.now() - timedelta(hours=2)),
            published_at=factory.LazyAttribute(lambda post: post.scheduled_at + timedelta(seconds=3)),
            attempts=1,
            external_id=factory.Sequence(lambda n: f"tw-{n}"),
        )
        publishing = factory.Trait(
            status=SNSPost.Status.PUBLISHING,
            scheduled_at=factory.LazyFunction(lambda: timezone.now() - timedelta(seconds=5)),
            claim_token=factory.LazyFunction(uuid.uuid4),
            claimed_at=factory.LazyFunction(timezone.now),
            lease_expires_at=factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=5)),
        )
        failed = factory.Trait(
            status=SNSPost.Status.FAILED,
            scheduled_at=factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1)),
            attempts=5,
            last_error="HTTP 503 from the platform (attempt 5/5)",
            last_error_at=factory.LazyFunction(timezone.now),
        )
        cancelled = factory.Trait(status=SNSPost.Status.CANCELLED)
