"""`manage.py seed_coocook`: consistent, non-overlapping demo data for existing users."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from coocook import services
from coocook.models import Booking, Chef, Review
from tests.platform_core.factories import UserFactory

pytestmark = pytest.mark.django_db


def seed(**options) -> str:
    out = StringIO()
    call_command("seed_coocook", scale="demo", stdout=out, **options)
    return out.getvalue()


def test_the_demo_scale_makes_30_chefs_and_200_bookings_spread_over_users():
    users = UserFactory.create_batch(8)
    output = seed(seed=7)
    assert Chef.objects.count() == 30
    assert Booking.objects.count() == 200
    assert Booking.objects.values("user").distinct().count() > 1
    assert set(Booking.objects.values_list("user_id", flat=True)) <= {u.pk for u in users}
    assert Booking.objects.values("chef").distinct().count() == 30
    assert "seed_coocook: chefs 30/30" in output
    assert "seed_coocook: bookings 200/200" in output
    assert "demo scale done in" in output


def test_seeded_bookings_are_consistent_with_their_chef_and_time_zone():
    UserFactory.create_batch(3)
    seed(seed=3)
    now = timezone.now()
    for booking in Booking.objects.select_related("chef"):
        start, end = services.booking_period(
            booking_date=booking.booking_date, start_time=booking.start_time, duration_hours=booking.duration_hours
        )
        assert (booking.period.lower, booking.period.upper) == (start, end)
        assert booking.total_price == booking.chef.hourly_rate * booking.duration_hours
        assert booking.currency == booking.chef.currency
        if booking.status == Booking.Status.COMPLETED:
            assert end <= now
        if booking.status == Booking.Status.CONFIRMED:
            assert start > now
    statuses = set(Booking.objects.values_list("status", flat=True))
    assert {"completed", "confirmed"} <= statuses


def test_seeded_chef_ratings_match_their_reviews():
    UserFactory.create_batch(3)
    seed(seed=11)
    assert Review.objects.exists()
    reviewed = Review.objects.select_related("booking")
    assert all(r.booking.status == "completed" and r.booking.user_id == r.user_id for r in reviewed)
    assert all(r.booking.chef_id == r.chef_id for r in reviewed)
    for chef in Chef.objects.annotate(reviews_made=Count("reviews"), total=Sum("reviews__rating")):
        assert chef.review_count == chef.reviews_made
        assert chef.rating_total == (chef.total or 0)
        expected = (
            (Decimal(chef.total) / chef.reviews_made).quantize(Decimal("0.01"), ROUND_HALF_UP)
            if chef.reviews_made
            else Decimal("0.00")
        )
        assert chef.rating == expected


def test_seeding_again_adds_another_set_without_overlaps():
    UserFactory.create_batch(2)
    seed()
    seed()  # the exclusion constraint would abort the COPY on any overlap
    assert Chef.objects.count() == 60
    assert Booking.objects.count() == 400


def _schema() -> set[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
            WHERE conrelid IN ('coocook_chef'::regclass, 'coocook_booking'::regclass, 'coocook_review'::regclass)
            UNION ALL
            SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index
            WHERE indrelid IN ('coocook_chef'::regclass, 'coocook_booking'::regclass, 'coocook_review'::regclass)
            """
        )
        return set(cursor.fetchall())


def test_seeding_leaves_every_constraint_and_index_as_it_was():
    UserFactory()
    before = _schema()
    assert any(name == "booking_no_overlap_per_chef" for name, _ in before)
    assert any(name == "booking_user_date_idx" for name, _ in before)
    seed()
    assert _schema() == before
    booking = Booking.objects.exclude(status=Booking.Status.CANCELLED).first()
    copy = {f.attname: getattr(booking, f.attname) for f in Booking._meta.concrete_fields if f.attname != "id"}
    with pytest.raises(IntegrityError), transaction.atomic():  # the overlap constraint is live again
        Booking.objects.create(**copy)


def test_seeding_without_users_asks_for_the_user_seed_first():
    with pytest.raises(CommandError, match=r"run manage\.py seed first"):
        seed()
    assert not Chef.objects.exists()
