"""Review campaigns run by brands, and users' applications to them."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from softfactory.cache import InvalidatingQuerySet


class Campaign(models.Model):
    """A brand's call for reviewers, open until its deadline or until full."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        ACTIVE = "active"
        CLOSED = "closed"

    title = models.CharField(max_length=200)
    brand = models.CharField(max_length=100)
    category = models.CharField(max_length=50)
    description = models.TextField(blank=True, max_length=10000)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    reward = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0"))])
    currency = models.CharField(max_length=3, default="KRW")
    max_reviewers = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    # Pending plus approved applications, kept in the applying transaction.
    applicant_count = models.PositiveIntegerField(default=0)
    deadline = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    # update() and bulk writes bump the response cache's namespace (review/signals.py).
    objects = InvalidatingQuerySet.as_manager()

    class Meta:
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=Q(applicant_count__lte=F("max_reviewers")), name="campaign_never_over_capacity"
            ),
            models.CheckConstraint(condition=Q(max_reviewers__gte=1), name="campaign_max_reviewers_positive"),
            models.CheckConstraint(condition=Q(reward__gte=0), name="campaign_reward_not_negative"),
            models.CheckConstraint(condition=Q(status__in=["draft", "active", "closed"]), name="campaign_status_valid"),
        ]
        indexes: ClassVar = [
            models.Index(fields=["status", "-created_at"], name="campaign_status_created_idx"),
        ]

    def __str__(self) -> str:
        return self.title


class CampaignCount(models.Model):
    """How many campaigns have each (status, category): the campaign list's exact count without COUNT(*).

    Written only by the triggers of migration 0003 (every write path, COPY and raw SQL included,
    in the writing transaction).
    """

    counts_rows_of: ClassVar[str] = "review.Campaign"  # manage.py recount_lists checks every such model

    pk = models.CompositePrimaryKey("status", "category")
    status = models.CharField(max_length=10)
    category = models.CharField(max_length=50)
    n = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.status}/{self.category}: {self.n}"


class Application(models.Model):
    """A user's application to review for a campaign; one per user and campaign."""

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="applications")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="campaign_applications")
    message = models.TextField(blank=True, max_length=5000)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["campaign", "user"], name="application_one_per_user_campaign"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "approved", "rejected"]), name="application_status_valid"
            ),
        ]
        indexes: ClassVar = [
            models.Index(fields=["user", "-created_at", "-id"], name="application_user_created_idx"),
        ]

    def __str__(self) -> str:
        return f"application {self.pk} to campaign {self.campaign_id}"
