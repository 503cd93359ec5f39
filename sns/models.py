"""Scheduled social-media posts. The row is the schedule and the outbox (docs/SCHEDULING.md)."""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class SNSPost(models.Model):
    """A post to publish on one platform at `scheduled_at`, exactly once."""

    class Platform(models.TextChoices):
        TWITTER = "twitter"
        INSTAGRAM = "instagram"
        FACEBOOK = "facebook"
        LINKEDIN = "linkedin"
        THREADS = "threads"

    class Status(models.TextChoices):
        SCHEDULED = "scheduled"
        PUBLISHING = "publishing"
        PUBLISHED = "published"
        FAILED = "failed"
        CANCELLED = "cancelled"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sns_posts")
    platform = models.CharField(max_length=20, choices=Platform.choices)
    content = models.TextField(max_length=5000)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SCHEDULED)
    # What the user asked for; retries never change it.
    scheduled_at = models.DateTimeField()
    # When the dispatcher may claim the row: scheduled_at at first, now + backoff after a retry.
    next_attempt_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=5)
    last_error = models.TextField(null=True, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    # Fencing token and lease of the current claim.
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Committed before the publisher is called: separates "never called" from "outcome unknown".
    call_started_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    external_id = models.CharField(max_length=255, blank=True)
    # Stable across attempts; sent to publishers that honour idempotency keys.
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "SNS post"
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=Q(status__in=["scheduled", "publishing", "published", "failed", "cancelled"]),
                name="snspost_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(platform__in=["twitter", "instagram", "facebook", "linkedin", "threads"]),
                name="snspost_platform_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status="published") | Q(published_at__isnull=False), name="snspost_published_has_time"
            ),
            models.CheckConstraint(
                condition=~Q(status="publishing") | Q(claim_token__isnull=False), name="snspost_publishing_is_claimed"
            ),
        ]
        indexes: ClassVar = [
            models.Index(fields=["status", "scheduled_at"], name="snspost_status_scheduled_idx"),
            models.Index(fields=["user", "-scheduled_at", "-id"], name="snspost_user_scheduled_idx"),
            # Serves the dispatcher's claim; only due candidates are in it.
            models.Index(fields=["next_attempt_at", "id"], name="snspost_due_idx", condition=Q(status="scheduled")),
            # Serves the reaper of expired claims.
            models.Index(fields=["lease_expires_at"], name="snspost_lease_idx", condition=Q(status="publishing")),
        ]

    def __str__(self) -> str:
        return f"{self.platform} post {self.pk} ({self.status})"
