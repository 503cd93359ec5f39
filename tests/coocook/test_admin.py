"""The Django admin for chefs, bookings and reviews: fixed query budgets, actions through services."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from coocook.models import Booking, Chef
from platform_core import services as platform_services
from platform_core.models import Payment
from tests.coocook.factories import BookingFactory, ChefFactory, ReviewFactory
from tests.platform_core.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def changelist_queries(superuser_client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = superuser_client.get(path)
    assert response.status_code == 200
    # Sessions are cached in the shared Redis, which may evict them: their reads don't count.
    return len([q for q in captured.captured_queries if "django_session" not in q["sql"]])


def add_rows(model: str, count: int) -> None:
    if model == "chef":
        ChefFactory.create_batch(count, owner=UserFactory())
    elif model == "booking":
        BookingFactory.create_batch(count)
    else:
        ReviewFactory.create_batch(count)


@pytest.mark.parametrize("model", ["chef", "booking", "review"])
def test_a_changelist_costs_the_same_queries_for_10_and_100_rows(superuser_client, model):
    path = f"/admin/coocook/{model}/"
    add_rows(model, 10)
    with_10 = changelist_queries(superuser_client, path)
    add_rows(model, 90)
    response = superuser_client.get(path)
    assert response.context["cl"].result_count == 100
    assert len(response.context["cl"].result_list) == 100
    assert changelist_queries(superuser_client, path) == with_10


@pytest.mark.parametrize(
    ("model", "query"),
    [
        ("chef", "?q=kim&is_active__exact=1"),
        ("booking", "?q=x&status__exact=confirmed"),
        ("review", "?q=good&rating=5"),
    ],
)
def test_changelists_search_and_filter(superuser_client, model, query):
    assert superuser_client.get(f"/admin/coocook/{model}/{query}").status_code == 200


def test_change_pages_open(superuser_client):
    review = ReviewFactory()
    for path in (
        f"/admin/coocook/chef/{review.chef_id}/change/",
        f"/admin/coocook/booking/{review.booking_id}/change/",
        f"/admin/coocook/review/{review.pk}/change/",
    ):
        assert superuser_client.get(path).status_code == 200


def test_the_deactivate_and_activate_actions_change_chefs(superuser_client):
    chefs = ChefFactory.create_batch(3)
    selected = [chefs[0].pk, chefs[1].pk]
    response = superuser_client.post(
        "/admin/coocook/chef/", {"action": "deactivate", "_selected_action": selected}, follow=True
    )
    assert response.status_code == 200
    assert set(Chef.objects.filter(is_active=False).values_list("pk", flat=True)) == set(selected)
    superuser_client.post("/admin/coocook/chef/", {"action": "activate", "_selected_action": [chefs[0].pk]})
    assert set(Chef.objects.filter(is_active=False).values_list("pk", flat=True)) == {chefs[1].pk}


def test_the_cancel_action_cancels_through_the_service_and_refunds(superuser_client):
    paid = BookingFactory()
    payment = platform_services.payment_create(
        user=paid.user, payable_kind="coocook.booking", payable_id=paid.pk, method="card"
    )
    done = BookingFactory(finished=True, status=Booking.Status.COMPLETED)
    response = superuser_client.post(
        "/admin/coocook/booking/", {"action": "cancel", "_selected_action": [paid.pk, done.pk]}, follow=True
    )
    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert any("1 booking(s) cancelled" in m for m in messages)
    assert any(f"#{done.pk}" in m for m in messages)
    paid.refresh_from_db()
    done.refresh_from_db()
    payment.refresh_from_db()
    assert (paid.status, done.status, payment.status) == ("cancelled", "completed", Payment.Status.REFUNDED)


def test_bookings_and_reviews_cannot_be_added_or_deleted_in_the_admin(superuser_client):
    review = ReviewFactory()
    assert superuser_client.get("/admin/coocook/booking/add/").status_code == 403
    assert superuser_client.get("/admin/coocook/review/add/").status_code == 403
    assert superuser_client.get(f"/admin/coocook/booking/{review.booking_id}/delete/").status_code == 403
    assert superuser_client.get(f"/admin/coocook/review/{review.pk}/delete/").status_code == 403


def test_the_admin_needs_staff(client, user):
    client.force_login(user)
    response = client.get("/admin/coocook/chef/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
