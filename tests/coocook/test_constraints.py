"""The database itself keeps coocook's invariants, also under concurrent transactions."""

from __future__ import annotations

import datetime as dt
import threading
import time
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange

from coocook import services
from coocook.models import Booking, Chef, Review
from softfactory.api import Conflict
from tests.coocook.factories import BookingFactory, ChefFactory, ReviewFactory, days_from_today
from tests.platform_core.factories import UserFactory


def slot(start: dt.datetime, hours: int) -> DateTimeTZRange:
    return DateTimeTZRange(start, start + dt.timedelta(hours=hours), "[)")


START = dt.datetime(2031, 5, 1, 9, 0, tzinfo=dt.UTC)


@pytest.mark.django_db
def test_the_database_rejects_an_overlapping_booking_of_the_same_chef():
    chef = ChefFactory()
    BookingFactory(chef=chef, period=slot(START, 3))
    with pytest.raises(IntegrityError, match="booking_no_overlap_per_chef"), transaction.atomic():
        BookingFactory(chef=chef, period=slot(START + dt.timedelta(hours=2), 3))
    assert Booking.objects.filter(chef=chef).count() == 1


@pytest.mark.django_db
def test_the_database_allows_adjacent_bookings_and_other_chefs():
    chef = ChefFactory()
    BookingFactory(chef=chef, period=slot(START, 3))
    BookingFactory(chef=chef, period=slot(START + dt.timedelta(hours=3), 1))
    BookingFactory(period=slot(START, 3))
    assert Booking.objects.count() == 3


@pytest.mark.django_db
def test_a_cancelled_booking_frees_its_slot_in_the_database():
    chef = ChefFactory()
    first = BookingFactory(chef=chef, period=slot(START, 3))
    first.status = Booking.Status.CANCELLED
    first.save(update_fields=["status"])
    BookingFactory(chef=chef, period=slot(START, 3))
    # ...and a cancelled booking can't come back to life on top of the new one.
    with pytest.raises(IntegrityError), transaction.atomic():
        Booking.objects.filter(pk=first.pk).update(status=Booking.Status.CONFIRMED)


@pytest.mark.django_db
def test_a_booking_crossing_midnight_overlaps_the_next_days_early_booking_in_the_database():
    chef = ChefFactory()
    late = services.booking_period(booking_date=days_from_today(3), start_time=dt.time(23, 0), duration_hours=3)
    early = services.booking_period(booking_date=days_from_today(4), start_time=dt.time(1, 0), duration_hours=1)
    BookingFactory(chef=chef, period=DateTimeTZRange(*late, "[)"))
    with pytest.raises(IntegrityError), transaction.atomic():
        BookingFactory(chef=chef, period=DateTimeTZRange(*early, "[)"))


@pytest.mark.django_db
def test_the_database_allows_one_review_per_booking():
    review = ReviewFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Review.objects.create(booking=review.booking, chef=review.chef, user=review.user, rating=1)
    assert Review.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"), [("duration_hours", 13), ("duration_hours", 0), ("guests", 21), ("status", "lost")]
)
def test_the_database_checks_booking_values(field, value):
    booking = BookingFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Booking.objects.filter(pk=booking.pk).update(**{field: value})


THREAD_ERRORS: list[BaseException] = []


def _in_thread(target, *args) -> threading.Thread:
    """Run target(*args) on a new thread, with its own database connection; errors are kept."""

    def run() -> None:
        try:
            target(*args)
        except BaseException as exc:
            THREAD_ERRORS.append(exc)
            raise
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.fixture(autouse=True)
def no_thread_errors():
    THREAD_ERRORS.clear()
    yield
    assert THREAD_ERRORS == []


def _book(user, chef: Chef, start_time: dt.time) -> Booking:
    return services.booking_create(
        user=user,
        chef_id=chef.pk,
        booking_date=days_from_today(20),
        start_time=start_time,
        duration_hours=3,
        guests=2,
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first_commits", [True, False])
def test_a_racing_transaction_waits_for_the_first_and_then_loses_or_wins(first_commits):
    chef = ChefFactory()
    first_user, second_user = UserFactory.create_batch(2)
    inserted = threading.Event()
    outcome: dict[str, object] = {}

    class Rollback(Exception):
        pass

    def first() -> None:
        try:
            with transaction.atomic():
                _book(first_user, chef, dt.time(18, 0))
                inserted.set()
                time.sleep(0.5)  # keep the overlapping row uncommitted while the other one inserts
                if not first_commits:
                    raise Rollback
        except Rollback:
            pass
        finally:
            inserted.set()

    def second() -> None:
        inserted.wait(10)
        started = time.monotonic()
        try:
            outcome["booking"] = _book(second_user, chef, dt.time(20, 0))
        except Conflict as exc:
            outcome["conflict"] = exc
        outcome["waited"] = time.monotonic() - started

    threads = [_in_thread(first), _in_thread(second)]
    for thread in threads:
        thread.join(30)
    assert outcome["waited"] >= 0.3  # blocked on the other transaction's row, not a Python check
    live = Booking.objects.using("default").filter(chef=chef)
    if first_commits:
        assert outcome["conflict"].code == "booking_overlap"
        assert list(live.values_list("user_id", flat=True)) == [first_user.pk]
    else:
        assert outcome["booking"].user_id == second_user.pk
        assert list(live.values_list("user_id", flat=True)) == [second_user.pk]


@pytest.mark.django_db(transaction=True)
def test_a_deadlock_between_overlapping_inserts_ends_as_a_conflict_not_an_error():
    # A books 18-21, B tries 20-23 (waits for A), then A books 22-23, which overlaps B's
    # uncommitted row: each waits for the other, and PostgreSQL aborts B's insert as a deadlock.
    chef = ChefFactory()
    first_user, second_user = UserFactory.create_batch(2)
    first_inserted = threading.Event()
    outcome: dict[str, object] = {}

    def first() -> None:
        with transaction.atomic():
            _book(first_user, chef, dt.time(18, 0))
            first_inserted.set()
            time.sleep(0.3)  # B is now waiting on this transaction
            services.booking_create(
                user=first_user,
                chef_id=chef.pk,
                booking_date=days_from_today(20),
                start_time=dt.time(22, 0),
                duration_hours=1,
                guests=2,
            )

    def second() -> None:
        first_inserted.wait(10)
        try:
            _book(second_user, chef, dt.time(20, 0))
        except Conflict as exc:
            outcome["conflict"] = exc

    threads = [_in_thread(first), _in_thread(second)]
    for thread in threads:
        thread.join(30)
    assert outcome["conflict"].code == "booking_overlap"
    live = Booking.objects.using("default").filter(chef=chef).order_by("period")
    assert [b.start_time for b in live] == [dt.time(18, 0), dt.time(22, 0)]
    assert {b.user_id for b in live} == {first_user.pk}


@pytest.mark.django_db(transaction=True)
def test_ten_threads_booking_one_slot_create_exactly_one_booking():
    chef = ChefFactory()
    users = UserFactory.create_batch(10)
    barrier = threading.Barrier(len(users))
    results: list[str] = []

    def attempt(user) -> None:
        barrier.wait(30)
        try:
            _book(user, chef, dt.time(12, 0))
        except Conflict:
            results.append("conflict")
        else:
            results.append("created")

    for thread in [_in_thread(attempt, user) for user in users]:
        thread.join(30)
    assert sorted(results) == ["conflict"] * 9 + ["created"]
    assert Booking.objects.using("default").filter(chef=chef).count() == 1


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_reviews_of_one_chef_lose_no_update():
    chef = ChefFactory()
    bookings = [BookingFactory(chef=chef, finished=True) for _ in range(10)]
    ratings = [5, 4, 4, 3, 5, 1, 2, 5, 4, 4]
    barrier = threading.Barrier(len(bookings))
    errors: list[BaseException] = []

    def review(booking: Booking, rating: int) -> None:
        barrier.wait(30)
        try:
            services.review_create(user=booking.user, booking_id=booking.pk, rating=rating)
        except BaseException as exc:
            errors.append(exc)

    threads = [_in_thread(review, booking, rating) for booking, rating in zip(bookings, ratings, strict=True)]
    for thread in threads:
        thread.join(30)
    assert errors == []
    chef = Chef.objects.using("default").get(pk=chef.pk)
    assert chef.review_count == 10
    assert chef.rating_total == sum(ratings) == 37
    assert chef.rating == Decimal("3.70")
    assert Review.objects.using("default").filter(chef=chef).count() == 10


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_reviews_of_one_booking_make_one_review():
    booking = BookingFactory(finished=True)
    barrier = threading.Barrier(2)
    results: list[str] = []

    def review(rating: int) -> None:
        barrier.wait(30)
        try:
            services.review_create(user=booking.user, booking_id=booking.pk, rating=rating)
        except Conflict as exc:
            results.append(exc.code)
        else:
            results.append("created")

    for thread in [_in_thread(review, 5), _in_thread(review, 1)]:
        thread.join(30)
    assert sorted(results) == ["created", "review_exists"]
    chef = Chef.objects.using("default").get(pk=booking.chef_id)
    assert chef.review_count == 1
    assert chef.rating_total in (1, 5)
