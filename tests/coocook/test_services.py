"""coocook services without HTTP: lifecycle, the payable registry, time rules, chef updates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from coocook import services
from coocook.models import Booking, Chef
from platform_core import payables
from softfactory.api import Conflict, Forbidden, Invalid
from tests.coocook.factories import BookingFactory, ChefFactory, days_from_today

pytestmark = pytest.mark.django_db


def test_finished_confirmed_bookings_are_completed_in_one_update():
    ended = BookingFactory(finished=True)
    ended_cancelled = BookingFactory(finished=True, status=Booking.Status.CANCELLED)
    upcoming = BookingFactory()
    in_progress = BookingFactory()
    now = timezone.now()
    Booking.objects.filter(pk=in_progress.pk).update(period=(now - dt.timedelta(hours=1), now + dt.timedelta(hours=1)))
    with CaptureQueriesContext(connection) as captured:
        assert services.bookings_complete_finished(now=now) == 1
    assert [q["sql"].split()[0] for q in captured.captured_queries if "coocook_booking" in q["sql"]] == ["UPDATE"]
    statuses = dict(Booking.objects.values_list("pk", "status"))
    assert statuses == {
        ended.pk: "completed",
        ended_cancelled.pk: "cancelled",
        upcoming.pk: "confirmed",
        in_progress.pk: "confirmed",
    }
    assert services.bookings_complete_finished(now=now) == 0


def test_a_booking_ending_exactly_now_is_completed():
    booking = BookingFactory(finished=True)
    assert services.bookings_complete_finished(now=booking.period.upper) == 1


def test_bookings_are_registered_as_payables():
    booking = BookingFactory(duration_hours=2, chef__hourly_rate=Decimal("30000"), chef__currency="USD")
    assert "coocook.booking" in payables.registered_kinds()
    payable = payables.load("coocook.booking", booking.pk)
    assert payable == payables.Payable(
        kind="coocook.booking",
        id=booking.pk,
        owner_id=booking.user_id,
        amount=Decimal("60000.00"),
        currency="USD",
        unpayable_reason=None,
    )


def test_a_cancelled_booking_is_not_payable_and_a_missing_one_is_none():
    booking = BookingFactory(status=Booking.Status.CANCELLED)
    assert payables.load("coocook.booking", booking.pk).unpayable_reason == "the booking is cancelled"
    assert payables.load("coocook.booking", 987654321) is None


def test_loading_a_payable_with_lock_locks_the_booking_row():
    booking = BookingFactory()
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        assert payables.load("coocook.booking", booking.pk, lock=True) is not None
    assert any("FOR UPDATE" in q["sql"] for q in captured.captured_queries)


def test_a_start_exactly_now_is_already_past():
    chef = ChefFactory()
    start, _ = services.booking_period(booking_date=days_from_today(2), start_time=dt.time(10, 0), duration_hours=1)
    kwargs = {
        "user": BookingFactory().user,
        "chef_id": chef.pk,
        "booking_date": days_from_today(2),
        "start_time": dt.time(10, 0),
        "duration_hours": 1,
        "guests": 1,
    }
    with pytest.raises(Invalid):
        services.booking_create(**kwargs, now=start)
    booking = services.booking_create(**kwargs, now=start - dt.timedelta(microseconds=1))
    assert booking.status == Booking.Status.CONFIRMED


@override_settings(BOOKING_TIME_ZONE="America/New_York")
def test_the_booking_time_zone_comes_from_settings():
    start, end = services.booking_period(
        booking_date=dt.date(2031, 1, 15), start_time=dt.time(18, 0), duration_hours=12
    )
    assert start == dt.datetime(2031, 1, 15, 23, 0, tzinfo=dt.UTC)  # EST is UTC-5 in January
    assert end == dt.datetime(2031, 1, 16, 11, 0, tzinfo=dt.UTC)


def test_the_total_price_is_the_hourly_rate_times_the_hours_in_the_chefs_currency():
    chef = ChefFactory(hourly_rate=Decimal("99999999.99"), currency="EUR")
    booking = services.booking_create(
        user=BookingFactory().user,
        chef_id=chef.pk,
        booking_date=days_from_today(30),
        start_time=dt.time(8, 30),
        duration_hours=12,
        guests=20,
    )
    booking.refresh_from_db()
    assert (booking.total_price, booking.currency) == (Decimal("1199999999.88"), "EUR")


def test_cancel_refuses_a_completed_booking():
    booking = BookingFactory(finished=True, status=Booking.Status.COMPLETED)
    with pytest.raises(Conflict):
        services.booking_cancel(booking_id=booking.pk, by=booking.user)


def test_a_chef_update_writes_only_the_changed_fields(staff_user):
    chef = ChefFactory(name="Old")
    stale = Chef.objects.get(pk=chef.pk)
    # A review lands after the editor loaded the chef...
    Chef.objects.filter(pk=chef.pk).update(rating=Decimal("4.00"), rating_total=4, review_count=1)
    updated = services.chef_update(chef=stale, by=staff_user, changes={"name": "New"})
    # ...and the profile edit does not put the old rating back.
    chef.refresh_from_db()
    assert (chef.name, chef.rating, chef.review_count) == ("New", Decimal("4.00"), 1)
    assert updated.rating == Decimal("4.00")


def test_a_chef_update_refuses_staff_only_fields_from_the_owner():
    chef = ChefFactory(owner=BookingFactory().user)
    with pytest.raises(Forbidden):
        services.chef_update(chef=chef, by=chef.owner, changes={"is_active": False})
    with pytest.raises(Forbidden):
        services.chef_update(chef=chef, by=BookingFactory().user, changes={"name": "X"})


def test_chefs_set_active_changes_only_what_differs():
    active, inactive = ChefFactory(), ChefFactory(is_active=False)
    assert services.chefs_set_active(chef_ids=[active.pk, inactive.pk], is_active=False) == 1
    assert not Chef.objects.filter(is_active=True).exists()
