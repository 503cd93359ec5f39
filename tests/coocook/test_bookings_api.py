"""Bookings over HTTP: create (no overlaps, idempotent), list, detail, cancel (with refunds), reviews."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from coocook.models import Booking
from platform_core import services as platform_services
from platform_core.models import Payment
from tests.coocook.factories import BookingFactory, ChefFactory, ReviewFactory, days_from_today
from tests.coocook.helpers import assert_query_budget, get_queries

pytestmark = pytest.mark.django_db

BOOKINGS = "/api/coocook/bookings"
BOOKING_FIELDS = {
    "id",
    "chef_id",
    "booking_date",
    "start_time",
    "duration_hours",
    "guests",
    "notes",
    "status",
    "total_price",
    "currency",
    "created_at",
}


def booking_body(chef, **overrides):
    body = {
        "chef_id": chef.pk,
        "booking_date": days_from_today(10).isoformat(),
        "start_time": "18:00",
        "duration_hours": 3,
        "guests": 4,
        "notes": "No nuts, please.",
    }
    body.update(overrides)
    return body


def book(client, chef, **overrides):
    return client.post(BOOKINGS, booking_body(chef, **overrides), format="json")


# --- create -----------------------------------------------------------------------------


def test_a_user_books_a_chef(client_for, user):
    chef = ChefFactory(hourly_rate=Decimal("40000.50"), currency="KRW")
    date = days_from_today(10)
    response = book(client_for(user), chef, booking_date=date.isoformat())
    assert response.status_code == 201
    body = response.json()
    assert set(body) == BOOKING_FIELDS
    assert body["chef_id"] == chef.pk
    assert body["booking_date"] == date.isoformat()
    assert body["start_time"] == "18:00"
    assert body["duration_hours"] == 3
    assert body["guests"] == 4
    assert body["notes"] == "No nuts, please."
    assert body["status"] == "confirmed"
    assert body["total_price"] == "120001.50"
    assert body["currency"] == "KRW"
    assert body["created_at"].endswith("Z")
    booking = Booking.objects.get(pk=body["id"])
    assert booking.user_id == user.pk


def test_the_booked_period_is_wall_clock_time_in_the_booking_time_zone(client_for, user):
    chef = ChefFactory()
    date = days_from_today(10)
    response = book(client_for(user), chef, booking_date=date.isoformat(), start_time="18:00", duration_hours=3)
    booking = Booking.objects.get(pk=response.json()["id"])
    # Asia/Seoul is UTC+9 all year: 18:00 there is 09:00 UTC.
    assert booking.period.lower == dt.datetime.combine(date, dt.time(9, 0), tzinfo=dt.UTC)
    assert booking.period.upper == dt.datetime.combine(date, dt.time(12, 0), tzinfo=dt.UTC)
    assert booking.period.lower_inc
    assert not booking.period.upper_inc


def test_notes_are_optional(client_for, user):
    body = booking_body(ChefFactory())
    del body["notes"]
    response = client_for(user).post(BOOKINGS, body, format="json")
    assert response.status_code == 201
    assert response.json()["notes"] == ""


def test_anonymous_booking_is_401(client_for):
    response = book(client_for(None), ChefFactory())
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert not Booking.objects.exists()


@pytest.mark.parametrize(
    ("date_offset", "start_time"), [(-1, "18:00"), (0, "00:00"), (-400, "10:00")], ids=["yesterday", "today", "old"]
)
def test_a_start_in_the_past_is_400(client_for, user, date_offset, start_time):
    response = book(
        client_for(user), ChefFactory(), booking_date=days_from_today(date_offset).isoformat(), start_time=start_time
    )
    assert response.status_code == 400
    assert not Booking.objects.exists()


def test_an_inactive_chef_cannot_be_booked(client_for, user):
    response = book(client_for(user), ChefFactory(is_active=False))
    assert response.status_code == 400
    assert "chef_id" in response.json()


@pytest.mark.parametrize("chef_id", [999999, 10**30, 0, -1, "abc", None, True, 1.5])
def test_an_unknown_or_malformed_chef_id_is_400(client_for, user, chef_id):
    chef = ChefFactory()
    response = client_for(user).post(BOOKINGS, booking_body(chef, chef_id=chef_id), format="json")
    assert response.status_code == 400
    assert "chef_id" in response.json()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"booking_date": "2030-02-30"}, "booking_date"),
        ({"booking_date": "2030-13-01"}, "booking_date"),
        ({"booking_date": "30/01/2030"}, "booking_date"),
        ({"booking_date": "2030-01-01T10:00:00+09:00"}, "booking_date"),
        ({"booking_date": 20300101}, "booking_date"),
        ({"booking_date": "99999-01-01"}, "booking_date"),
        ({"booking_date": ""}, "booking_date"),
        ({"start_time": "25:00"}, "start_time"),
        ({"start_time": "18:60"}, "start_time"),
        ({"start_time": "6pm"}, "start_time"),
        ({"start_time": 1800}, "start_time"),
        ({"start_time": "18:00+09:00"}, "start_time"),
        ({"duration_hours": 0}, "duration_hours"),
        ({"duration_hours": 13}, "duration_hours"),
        ({"duration_hours": 1.5}, "duration_hours"),
        ({"duration_hours": "three"}, "duration_hours"),
        ({"duration_hours": 10**40}, "duration_hours"),
        ({"guests": 0}, "guests"),
        ({"guests": 21}, "guests"),
        ({"guests": [4]}, "guests"),
        ({"notes": "x" * 2001}, "notes"),
        ({"notes": "nul\x00byte"}, "notes"),
        ({"notes": {"a": 1}}, "notes"),
    ],
)
def test_invalid_booking_bodies_are_400_with_the_field(client_for, user, overrides, field):
    response = book(client_for(user), ChefFactory(), **overrides)
    assert response.status_code == 400
    assert field in response.json()
    assert not Booking.objects.exists()


def test_missing_fields_are_named(client_for, user):
    response = client_for(user).post(BOOKINGS, {}, format="json")
    assert response.status_code == 400
    assert {"chef_id", "booking_date", "start_time", "duration_hours", "guests"} <= set(response.json())


def test_the_last_representable_day_is_400_not_500(client_for, user):
    response = book(client_for(user), ChefFactory(), booking_date="9999-12-31", start_time="23:00", duration_hours=12)
    assert response.status_code == 400
    assert "booking_date" in response.json()


def test_a_body_that_is_not_an_object_or_not_json_is_400(client_for, user):
    client = client_for(user)
    assert client.post(BOOKINGS, [1, 2], format="json").status_code == 400
    assert client.post(BOOKINGS, "{", content_type="application/json").status_code == 400
    assert client.post(BOOKINGS, '{"guests": NaN}', content_type="application/json").status_code == 400


def test_an_overlapping_booking_is_409_booking_overlap(client_for, user, other_user):
    chef = ChefFactory()
    assert book(client_for(user), chef, start_time="18:00", duration_hours=3).status_code == 201
    response = book(client_for(other_user), chef, start_time="20:00", duration_hours=1)
    assert response.status_code == 409
    assert response.json()["code"] == "booking_overlap"
    assert response.json()["detail"]
    assert Booking.objects.filter(chef=chef).count() == 1


def test_back_to_back_bookings_do_not_overlap(client_for, user, other_user):
    chef = ChefFactory()
    assert book(client_for(user), chef, start_time="18:00", duration_hours=3).status_code == 201
    assert book(client_for(other_user), chef, start_time="21:00", duration_hours=2).status_code == 201
    assert book(client_for(other_user), chef, start_time="16:00", duration_hours=2).status_code == 201


def test_two_chefs_can_be_booked_at_the_same_time(client_for, user):
    client = client_for(user)
    assert book(client, ChefFactory()).status_code == 201
    assert book(client, ChefFactory()).status_code == 201


def test_a_booking_crossing_midnight_overlaps_the_next_days_early_booking(client_for, user):
    chef = ChefFactory()
    client = client_for(user)
    late = book(client, chef, booking_date=days_from_today(5).isoformat(), start_time="23:00", duration_hours=3)
    assert late.status_code == 201
    early = book(client, chef, booking_date=days_from_today(6).isoformat(), start_time="01:00", duration_hours=1)
    assert early.status_code == 409
    after = book(client, chef, booking_date=days_from_today(6).isoformat(), start_time="02:00", duration_hours=1)
    assert after.status_code == 201


def test_a_cancelled_booking_frees_its_slot(client_for, user, other_user):
    chef = ChefFactory()
    first = book(client_for(user), chef).json()
    assert client_for(user).post(f"{BOOKINGS}/{first['id']}/cancel").status_code == 200
    response = book(client_for(other_user), chef)
    assert response.status_code == 201


def test_the_same_idempotency_key_and_body_replays_the_first_answer(client_for, user):
    chef = ChefFactory()
    client = client_for(user)
    body = booking_body(chef)
    first = client.post(BOOKINGS, body, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    again = client.post(BOOKINGS, body, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert Booking.objects.count() == 1


def test_the_same_idempotency_key_with_another_body_is_422(client_for, user):
    chef = ChefFactory()
    client = client_for(user)
    assert client.post(BOOKINGS, booking_body(chef), format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    response = client.post(BOOKINGS, booking_body(chef, guests=5), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 422
    assert Booking.objects.count() == 1


def test_a_conflict_is_not_remembered_under_its_idempotency_key(client_for, user, other_user):
    chef = ChefFactory()
    book(client_for(other_user), chef)
    client = client_for(user)
    assert client.post(BOOKINGS, booking_body(chef), format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 409
    Booking.objects.update(status=Booking.Status.CANCELLED)
    assert client.post(BOOKINGS, booking_body(chef), format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 201


@pytest.mark.parametrize("path", [f"{BOOKINGS}/", f"{BOOKINGS}/1/", f"{BOOKINGS}/1/cancel/", f"{BOOKINGS}/1/reviews/"])
def test_a_trailing_slash_is_404(client_for, user, path):
    BookingFactory(pk=1, user=user)
    client = client_for(user)
    method = client.post if path.endswith(("cancel/", "bookings/")) else client.get
    assert method(path).status_code == 404
    assert Booking.objects.get(pk=1).status == "confirmed"


# --- list -------------------------------------------------------------------------------


def test_a_user_lists_only_their_own_bookings_newest_date_first(client_for, user, other_user):
    soon = BookingFactory(user=user, booking_date=days_from_today(2))
    later_a = BookingFactory(user=user, booking_date=days_from_today(9))
    later_b = BookingFactory(user=user, booking_date=days_from_today(9))
    BookingFactory(user=other_user)
    response = client_for(user).get(BOOKINGS)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert [item["id"] for item in body["results"]] == [later_a.pk, later_b.pk, soon.pk]
    assert set(body["results"][0]) == BOOKING_FIELDS


def test_staff_list_their_own_bookings_too(client_for, staff_user, user):
    BookingFactory(user=user)
    assert client_for(staff_user).get(BOOKINGS).json()["count"] == 0


def test_listing_bookings_needs_a_user(client_for):
    assert client_for(None).get(BOOKINGS).status_code == 401


@pytest.mark.parametrize("params", [{"per_page": "0"}, {"per_page": "101"}, {"per_page": "abc"}, {"page": "0"}])
def test_bad_booking_pagination_is_400(client_for, user, params):
    assert client_for(user).get(BOOKINGS, params).status_code == 400


def test_a_booking_page_past_the_end_is_empty(client_for, user):
    BookingFactory(user=user)
    response = client_for(user).get(BOOKINGS, {"page": "5", "unknown": "x"})
    assert response.status_code == 200
    assert response.json()["results"] == []
    assert response.json()["count"] == 1


def test_the_booking_list_costs_the_same_queries_for_3_and_30_bookings(client_for, user):
    client = client_for(user)
    BookingFactory.create_batch(3, user=user)
    response, queries = get_queries(client, BOOKINGS, {"per_page": "100"})
    assert len(response.json()["results"]) == 3
    assert_query_budget(queries, domain=2)  # count + page
    BookingFactory.create_batch(27, user=user)
    response, queries = get_queries(client, BOOKINGS, {"per_page": "100"})
    assert len(response.json()["results"]) == 30
    assert_query_budget(queries, domain=2)


# --- detail -----------------------------------------------------------------------------


def test_the_owner_and_staff_read_a_booking(client_for, user, staff_user):
    booking = BookingFactory(user=user)
    for caller in (user, staff_user):
        response = client_for(caller).get(f"{BOOKINGS}/{booking.pk}")
        assert response.status_code == 200
        assert response.json()["id"] == booking.pk


def test_another_users_booking_is_404(client_for, other_user):
    booking = BookingFactory()
    response = client_for(other_user).get(f"{BOOKINGS}/{booking.pk}")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_reading_a_booking_needs_a_user(client_for):
    booking = BookingFactory()
    assert client_for(None).get(f"{BOOKINGS}/{booking.pk}").status_code == 401


@pytest.mark.parametrize("suffix", ["999999", "99999999999999999999999", "abc"])
def test_unknown_booking_ids_are_404(client_for, user, suffix):
    assert client_for(user).get(f"{BOOKINGS}/{suffix}").status_code == 404


# --- cancel -----------------------------------------------------------------------------


def cancel(client, booking):
    return client.post(f"{BOOKINGS}/{booking.pk}/cancel")


def test_the_owner_cancels_a_booking(client_for, user):
    booking = BookingFactory(user=user)
    response = cancel(client_for(user), booking)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["id"] == booking.pk
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED


def test_staff_cancel_any_booking(client_for, staff_user):
    booking = BookingFactory()
    assert cancel(client_for(staff_user), booking).status_code == 200
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED


def test_another_user_cannot_cancel_a_booking(client_for, other_user):
    booking = BookingFactory()
    assert cancel(client_for(other_user), booking).status_code == 404
    assert cancel(client_for(None), booking).status_code == 401
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED


def test_cancelling_twice_is_409(client_for, user):
    booking = BookingFactory(user=user)
    client = client_for(user)
    assert cancel(client, booking).status_code == 200
    response = cancel(client, booking)
    assert response.status_code == 409
    assert response.json()["code"] == "booking_cancelled"


def test_a_completed_booking_cannot_be_cancelled(client_for, user):
    booking = BookingFactory(user=user, finished=True, status=Booking.Status.COMPLETED)
    response = cancel(client_for(user), booking)
    assert response.status_code == 409
    assert response.json()["code"] == "booking_completed"
    booking.refresh_from_db()
    assert booking.status == Booking.Status.COMPLETED


def test_a_booking_that_has_ended_cannot_be_cancelled_before_the_job_completes_it(client_for, user):
    booking = BookingFactory(user=user, finished=True)
    assert cancel(client_for(user), booking).status_code == 409
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED


def test_cancelling_a_paid_booking_refunds_its_payment(client_for, user):
    booking = BookingFactory(user=user)
    payment = platform_services.payment_create(
        user=user, payable_kind="coocook.booking", payable_id=booking.pk, method="card"
    )
    assert payment.status == Payment.Status.PAID
    assert payment.amount == booking.total_price
    response = cancel(client_for(user), booking)
    assert response.status_code == 200
    payment.refresh_from_db()
    assert payment.status == Payment.Status.REFUNDED
    assert payment.refunded_at is not None


def test_cancelling_an_unpaid_booking_touches_no_payment(client_for, user):
    booking = BookingFactory(user=user)
    assert cancel(client_for(user), booking).status_code == 200
    assert not Payment.objects.exists()


def test_cancel_only_accepts_post(client_for, user):
    booking = BookingFactory(user=user)
    assert client_for(user).get(f"{BOOKINGS}/{booking.pk}/cancel").status_code == 405


# --- a booking's reviews ----------------------------------------------------------------


def test_the_owner_and_staff_list_a_bookings_reviews(client_for, user, staff_user):
    review = ReviewFactory(booking__user=user, rating=5, comment="Superb")
    for caller in (user, staff_user):
        response = client_for(caller).get(f"{BOOKINGS}/{review.booking_id}/reviews")
        assert response.status_code == 200
        body = response.json()
        assert body["count"] == 1
        assert body["results"] == [
            {
                "id": review.pk,
                "booking_id": review.booking_id,
                "rating": 5,
                "comment": "Superb",
                "created_at": body["results"][0]["created_at"],
            }
        ]
        assert body["results"][0]["created_at"].endswith("Z")


def test_a_booking_without_a_review_lists_none(client_for, user):
    booking = BookingFactory(user=user)
    response = client_for(user).get(f"{BOOKINGS}/{booking.pk}/reviews")
    assert response.status_code == 200
    assert response.json()["results"] == []


def test_other_users_cannot_list_a_bookings_reviews(client_for, other_user):
    review = ReviewFactory()
    assert client_for(other_user).get(f"{BOOKINGS}/{review.booking_id}/reviews").status_code == 404
    assert client_for(None).get(f"{BOOKINGS}/{review.booking_id}/reviews").status_code == 401


def test_a_bookings_reviews_cost_a_fixed_number_of_queries(client_for, user):
    client = client_for(user)
    booking = BookingFactory(user=user)
    response, queries = get_queries(client, f"{BOOKINGS}/{booking.pk}/reviews")
    assert response.json()["count"] == 0
    assert_query_budget(queries, domain=2)  # the booking, then the count (an empty page is not read)
    ReviewFactory(booking=booking, chef=booking.chef, user=user)
    response, queries = get_queries(client, f"{BOOKINGS}/{booking.pk}/reviews", {"per_page": "100"})
    assert response.json()["count"] == 1
    assert_query_budget(queries, domain=3)  # the booking, the count, the page


def test_a_booking_paid_over_the_api_is_refunded_when_cancelled_over_the_api(client_for, user):
    booking = BookingFactory(user=user, duration_hours=2, chef__hourly_rate=Decimal("50000"))
    client = client_for(user)
    paid = client.post("/api/payment/payments", {"booking_id": booking.pk, "method": "card"}, format="json")
    assert paid.status_code == 201
    assert (paid.json()["amount"], paid.json()["currency"]) == ("100000.00", "KRW")
    assert cancel(client, booking).status_code == 200
    assert client.get(f"/api/payment/payments/{paid.json()['id']}").json()["status"] == "refunded"


def test_a_cancelled_booking_cannot_be_paid(client_for, user):
    booking = BookingFactory(user=user, status=Booking.Status.CANCELLED)
    response = client_for(user).post(
        "/api/payment/payments", {"booking_id": booking.pk, "method": "card"}, format="json"
    )
    assert response.status_code == 409
    assert not Payment.objects.exists()
