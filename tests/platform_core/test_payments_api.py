"""Payments over HTTP (API.md platform_core): settle at once, one live payment per booking, refunds."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from coocook.models import Booking
from platform_core.models import Payment
from tests.coocook.factories import BookingFactory
from tests.platform_core.factories import token_for

pytestmark = pytest.mark.django_db


def pay(client: APIClient, booking: Booking, method: str = "card", **headers: str):
    return client.post("/api/payment/payments", {"booking_id": booking.pk, "method": method}, format="json", **headers)


def test_paying_a_booking_settles_at_once_and_answers_201(client_for, user):
    booking = BookingFactory(user=user)
    response = pay(client_for(user), booking)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "booking_id", "amount", "currency", "method", "status", "created_at"}
    assert body["booking_id"] == booking.pk
    assert body["amount"] == f"{booking.total_price:.2f}"
    assert body["currency"] == booking.currency
    assert body["status"] == "paid"
    assert body["created_at"].endswith("Z")


def test_paying_someone_elses_or_an_unknown_booking_is_404(client_for, user, other_user):
    client = client_for(user)
    assert pay(client, BookingFactory(user=other_user)).status_code == 404
    response = client.post("/api/payment/payments", {"booking_id": 999999999, "method": "card"}, format="json")
    assert response.status_code == 404
    assert response.json()["code"]
    assert not Payment.objects.exists()


def test_paying_twice_or_a_cancelled_booking_is_409(client_for, user):
    client = client_for(user)
    booking = BookingFactory(user=user)
    assert pay(client, booking).status_code == 201
    second = pay(client, booking, "bank_transfer")
    assert second.status_code == 409
    assert second.json()["code"] == "already_paid"
    cancelled = BookingFactory(user=user, status=Booking.Status.CANCELLED)
    assert pay(client, cancelled).status_code == 409
    assert Payment.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"booking_id": "x", "method": "card"},
        {"booking_id": 1, "method": "cash"},
        {"booking_id": -1, "method": "card"},
        {"booking_id": 2**70, "method": "card"},
    ],
)
def test_bad_payment_input_is_400(client_for, user, body):
    assert client_for(user).post("/api/payment/payments", body, format="json").status_code == 400


def test_anonymous_payments_are_401(api_client):
    assert api_client.get("/api/payment/payments").status_code == 401
    assert api_client.post("/api/payment/payments", {}, format="json").status_code == 401


def test_users_list_their_own_payments_newest_first_with_a_fixed_query_budget(client_for, user, other_user):
    client = client_for(user)
    for _ in range(3):
        pay(client, BookingFactory(user=user))
    pay(client_for(other_user), BookingFactory(user=other_user))
    client.get("/api/payment/payments")  # warm the token cache
    with CaptureQueriesContext(connection) as few:
        body = client.get("/api/payment/payments").json()
    assert body["count"] == 3
    ids = [p["id"] for p in body["results"]]
    assert ids == sorted(ids, reverse=True)
    for _ in range(12):
        pay(client, BookingFactory(user=user))
    with CaptureQueriesContext(connection) as many:
        assert client.get("/api/payment/payments?per_page=100").json()["count"] == 15
    assert len(many.captured_queries) == len(few.captured_queries) == 2  # count + page


def test_a_payment_is_visible_to_its_owner_and_staff_only(client_for, user, other_user, staff_user):
    payment_id = pay(client_for(user), BookingFactory(user=user)).json()["id"]
    assert client_for(user).get(f"/api/payment/payments/{payment_id}").status_code == 200
    assert client_for(staff_user).get(f"/api/payment/payments/{payment_id}").status_code == 200
    assert client_for(other_user).get(f"/api/payment/payments/{payment_id}").status_code == 404
    assert client_for(user).get("/api/payment/payments/99999999999999999999999").status_code == 404
    assert client_for(user).get("/api/payment/payments/abc").status_code == 404


def test_only_staff_refund_and_only_paid_payments(client_for, user, other_user, staff_user):
    payment_id = pay(client_for(user), BookingFactory(user=user)).json()["id"]
    assert client_for(user).post(f"/api/payment/payments/{payment_id}/refund").status_code == 403
    assert client_for(other_user).post(f"/api/payment/payments/{payment_id}/refund").status_code == 404
    refunded = client_for(staff_user).post(f"/api/payment/payments/{payment_id}/refund")
    assert refunded.status_code == 200
    assert refunded.json()["status"] == "refunded"
    again = client_for(staff_user).post(f"/api/payment/payments/{payment_id}/refund")
    assert again.status_code == 409


def test_cancelling_a_paid_booking_refunds_it(client_for, user):
    client = client_for(user)
    booking = BookingFactory(user=user)
    payment_id = pay(client, booking).json()["id"]
    assert client.post(f"/api/coocook/bookings/{booking.pk}/cancel").status_code == 200
    assert Payment.objects.get(pk=payment_id).status == Payment.Status.REFUNDED


def test_a_refunded_booking_can_not_be_paid_again_once_cancelled_but_history_stays(client_for, user):
    client = client_for(user)
    booking = BookingFactory(user=user)
    pay(client, booking)
    client.post(f"/api/coocook/bookings/{booking.pk}/cancel")
    assert pay(client, booking).status_code == 409
    assert Payment.objects.filter(payable_id=booking.pk).count() == 1


def test_the_database_allows_one_live_payment_per_booking(user):
    booking = BookingFactory(user=user)
    fields = {
        "payable_kind": "coocook.booking",
        "payable_id": booking.pk,
        "user": user,
        "amount": 1,
        "currency": "KRW",
        "method": "card",
    }
    Payment.objects.create(status="refunded", **fields)
    Payment.objects.create(status="paid", **fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.create(status="paid", **fields)


def test_an_idempotency_key_replays_the_first_payment_and_charges_once(client_for, user):
    client = client_for(user)
    booking = BookingFactory(user=user)
    first = pay(client, booking, HTTP_IDEMPOTENCY_KEY="pay-1")
    again = pay(client, booking, HTTP_IDEMPOTENCY_KEY="pay-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Payment.objects.count() == 1
    other = pay(client, booking, "bank_transfer", HTTP_IDEMPOTENCY_KEY="pay-1")
    assert other.status_code == 422


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_while_the_first_request_is_still_running_is_409(client_for, user, settings):
    settings.PAYMENT_TEST_PROVIDER_DELAY_SECONDS = 1.5  # hold the first request open
    booking = BookingFactory(user=user)
    key = token_for(user)
    results: dict[str, int] = {}

    def first() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        results["first"] = pay(client, booking, HTTP_IDEMPOTENCY_KEY="slow-1").status_code
        connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    time.sleep(0.5)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    started = time.monotonic()
    duplicate = pay(client, booking, HTTP_IDEMPOTENCY_KEY="slow-1")
    answered_in = time.monotonic() - started
    thread.join()
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "idempotency_key_in_use"
    assert answered_in < 1.0  # answered at once, not queued behind the first
    assert results["first"] == 201
    assert Payment.objects.count() == 1
    replay = pay(client, booking, HTTP_IDEMPOTENCY_KEY="slow-1")
    assert replay.status_code == 201
