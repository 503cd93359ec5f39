"""CooCook: chefs, their bookings, and reviews of bookings."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateTimeRangeField, RangeOperators
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from softfactory.cache import InvalidatingQuerySet


class Chef(models.Model):
    """A private chef customers can book by the hour."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="chef_profiles"
    )
    name = models.CharField(max_length=150)
    cuisine_type = models.CharField(max_length=50)
    bio = models.TextField(blank=True, max_length=5000)
    hourly_rate = models.DecimalField(max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0"))])
    currency = models.CharField(max_length=3, default="KRW")
    # Kept up to date in the review's transaction: a list never aggregates reviews.
    rating = models.DecimalField(max_digits=3, decimal_places=2, default=Decimal("0.00"))
    rating_total = models.PositiveIntegerField(default=0)
    review_count = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    # update() and bulk writes bump the response cache's namespaces (coocook/signals.py).
    objects = InvalidatingQuerySet.as_manager()

    class Meta:
        constraints: ClassVar = [
            models.CheckConstraint(condition=Q(hourly_rate__gte=0), name="chef_hourly_rate_not_negative"),
            models.CheckConstraint(condition=Q(rating__gte=0) & Q(rating__lte=5), name="chef_rating_0_to_5"),
        ]
        indexes: ClassVar = [
            models.Index(fields=["is_active", "cuisine_type"], name="chef_active_cuisine_idx"),
            models.Index(fields=["-rating", "id"], name="chef_rating_idx", condition=Q(is_active=True)),
        ]

    def __str__(self) -> str:
        return self.name


class ChefCount(models.Model):
    """How many chefs have each (is_active, cuisine_type): the chef list's exact count without COUNT(*).

    Written only by the triggers of migration 0003 (every write path, COPY and raw SQL included,
    in the writing transaction); the unfiltered count is the SUM over a few dozen rows.
    """

    counts_rows_of: ClassVar[str] = "coocook.Chef"  # manage.py recount_lists checks every such model

    pk = models.CompositePrimaryKey("is_active", "cuisine_type")
    is_active = models.BooleanField()
    cuisine_type = models.CharField(max_length=50)
    n = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.cuisine_type} ({'active' if self.is_active else 'inactive'}): {self.n}"


class Booking(models.Model):
    """A chef booked for `period` = [start, start + duration) in BOOKING_TIME_ZONE wall-clock time."""

    class Status(models.TextChoices):
        CONFIRMED = "confirmed"
        COMPLETED = "completed"
        CANCELLED = "cancelled"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bookings")
    chef = models.ForeignKey(Chef, on_delete=models.PROTECT, related_name="bookings")
    booking_date = models.DateField()
    start_time = models.TimeField()
    duration_hours = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(12)])
    guests = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(20)])
    notes = models.TextField(blank=True, max_length=2000)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CONFIRMED)
    total_price = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    period = DateTimeRangeField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints: ClassVar = [
            # Two live bookings of one chef never overlap; cancelled ones free their slot.
            ExclusionConstraint(
                name="booking_no_overlap_per_chef",
                expressions=[("chef", RangeOperators.EQUAL), ("period", RangeOperators.OVERLAPS)],
                condition=~Q(status="cancelled"),
            ),
            models.CheckConstraint(
                condition=Q(duration_hours__gte=1, duration_hours__lte=12), name="booking_duration_1_12"
            ),
            models.CheckConstraint(condition=Q(guests__gte=1, guests__lte=20), name="booking_guests_1_20"),
            models.CheckConstraint(
                condition=Q(status__in=["confirmed", "completed", "cancelled"]), name="booking_status_valid"
            ),
            models.CheckConstraint(condition=Q(total_price__gte=0), name="booking_total_not_negative"),
        ]
        indexes: ClassVar = [
            models.Index(fields=["user", "-booking_date"], name="booking_user_date_idx"),
        ]

    def __str__(self) -> str:
        return f"booking {self.pk} of chef {self.chef_id} on {self.booking_date} {self.start_time}"


class Review(models.Model):
    """A customer's review of one finished booking."""

    booking = models.OneToOneField(Booking, on_delete=models.PROTECT, related_name="review")
    chef = models.ForeignKey(Chef, on_delete=models.PROTECT, related_name="reviews")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews")
    rating = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    comment = models.TextField(blank=True, max_length=5000)
    created_at = models.DateTimeField(default=timezone.now)

    objects = InvalidatingQuerySet.as_manager()

    class Meta:
        constraints: ClassVar = [
            models.CheckConstraint(condition=Q(rating__gte=1, rating__lte=5), name="review_rating_1_5"),
        ]
        indexes: ClassVar = [
            models.Index(fields=["chef", "-created_at", "id"], name="review_chef_created_idx"),
        ]

    def __str__(self) -> str:
        return f"review {self.pk} ({self.rating}) of booking {self.booking_id}"
