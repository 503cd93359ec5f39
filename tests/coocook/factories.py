"""Factories for chefs, bookings and reviews."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import factory
from django.conf import settings
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.utils import timezone
from factory.django import DjangoModelFactory

from coocook.models import Booking, Chef, Review
from coocook.services import booking_period
from tests.platform_core.factories import UserFactory


def local_today() -> dt.date:
    """Today in BOOKING_TIME_ZONE, the zone booking dates are written in."""
    return timezone.now().astimezone(ZoneInfo(settings.BOOKING_TIME_ZONE)).date()


def days_from_today(days: int) -> dt.date:
    return local_today() + dt.timedelta(days=days)


class ChefFactory(DjangoModelFactory[Chef]):
    class Meta:
        model = Chef

    name = factory.Sequence(lambda n: f"Chef {n}")
    cuisine_type = "korean"
    bio = "Seasonal home cooking."
    hourly_rate = Decimal("50000.00")
    currency = "KRW"


def _period(booking: Booking) -> DateTimeTZRange:
    start, end = booking_period(
        booking_date=booking.booking_date, start_time=booking.start_time, duration_hours=booking.duration_hours
    )
    return DateTimeTZRange(start, end, "[)")


class BookingFactory(DjangoModelFactory[Booking]):
    class Meta:
        model = Booking

    user = factory.SubFactory(UserFactory)
    chef = factory.SubFactory(ChefFactory)
    # One day apart, so bookings of a shared chef never overlap unless a test says so.
    booking_date = factory.Sequence(lambda n: days_from_today(7 + n))
    start_time = dt.time(18, 0)
    duration_hours = 3
    guests = 2
    notes = ""
    status = Booking.Status.CONFIRMED
    total_price = factory.LazyAttribute(lambda b: b.chef.hourly_rate * b.duration_hours)
    currency = factory.LazyAttribute(lambda b: b.chef.currency)
    period = factory.LazyAttribute(_period)

    class Params:
        # A booking that has already ended (reviewable).
        finished = factory.Trait(booking_date=factory.Sequence(lambda n: days_from_today(-3 - n)))


class ReviewFactory(DjangoModelFactory[Review]):
    class Meta:
        model = Review

    booking = factory.SubFactory(BookingFactory, finished=True)
    chef = factory.SelfAttribute("booking.chef")
    user = factory.SelfAttribute("booking.user")
    rating = 4
    comment = "Lovely dinner."
