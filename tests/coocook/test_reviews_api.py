"""Reviews over HTTP: one per finished booking by its user; the chef's rating follows; public chef reviews."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from coocook.models import Booking, Chef, Review
from tests.coocook.factories import BookingFactory, ChefFactory, ReviewFactory, days_from_today
from tests.coocook.helpers import assert_query_budget, get_queries

pytestmark = pytest.mark.django_db

REVIEWS = "/api/coocook/reviews"


def chef_reviews(chef: Chef) -> str:
    return f"/api/coocook/chefs/{chef.pk}/reviews"


def post_review(client, booking, **overrides):
    body = {"booking_id": booking.pk, "rating": 4, "comment": "Great kimchi jjigae."}
    body.update(overrides)
    return client.post(REVIEWS, body, format="json")


# --- create -----------------------------------------------------------------------------


def test_the_bookings_user_reviews_a_finished_booking(client_for, user):
    booking = BookingFactory(user=user, finished=True)
    response = post_review(client_for(user), booking, rating=5, comment="Perfect")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "booking_id", "rating", "comment", "created_at"}
    assert body["booking_id"] == booking.pk
    assert body["rating"] == 5
    assert body["comment"] == "Perfect"
    assert body["created_at"].endswith("Z")
    review = Review.objects.get(pk=body["id"])
    assert (review.user_id, review.chef_id) == (user.pk, booking.chef_id)


def test_a_completed_booking_can_be_reviewed(client_for, user):
    booking = BookingFactory(user=user, finished=True, status=Booking.Status.COMPLETED)
    assert post_review(client_for(user), booking).status_code == 201


def test_the_chefs_rating_and_review_count_follow_each_review(client_for, user):
    chef = ChefFactory()
    client = client_for(user)
    for rating in (5, 4, 4):
        booking = BookingFactory(user=user, chef=chef, finished=True)
        assert post_review(client, booking, rating=rating).status_code == 201
    chef.refresh_from_db()
    assert (chef.review_count, chef.rating_total, chef.rating) == (3, 13, Decimal("4.33"))
    listed = client_for(None).get("/api/coocook/chefs").json()["results"][0]
    assert (listed["rating"], listed["review_count"]) == ("4.33", 3)
    detail = client_for(None).get(f"/api/coocook/chefs/{chef.pk}").json()
    assert (detail["rating"], detail["review_count"]) == ("4.33", 3)


def test_a_rating_mean_rounds_half_up_to_two_places(client_for, user):
    chef = ChefFactory(rating_total=4, review_count=3, rating=Decimal("1.33"))  # 1, 1, 2 so far
    booking = BookingFactory(user=user, chef=chef, finished=True)
    assert post_review(client_for(user), booking, rating=1).status_code == 201
    chef.refresh_from_db()
    assert chef.rating == Decimal("1.25")  # 5 / 4


def test_someone_elses_booking_is_404(client_for, other_user, staff_user):
    booking = BookingFactory(finished=True)
    for caller in (other_user, staff_user):
        response = post_review(client_for(caller), booking)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert not Review.objects.exists()


def test_an_unknown_booking_is_404(client_for, user):
    response = client_for(user).post(REVIEWS, {"booking_id": 987654, "rating": 3}, format="json")
    assert response.status_code == 404


def test_reviewing_needs_a_user(client_for):
    booking = BookingFactory(finished=True)
    response = post_review(client_for(None), booking)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_cancelled_booking_cannot_be_reviewed(client_for, user):
    booking = BookingFactory(user=user, finished=True, status=Booking.Status.CANCELLED)
    response = post_review(client_for(user), booking)
    assert response.status_code == 400
    assert "booking_id" in response.json()
    assert not Review.objects.exists()


def test_a_future_booking_cannot_be_reviewed(client_for, user):
    booking = BookingFactory(user=user, booking_date=days_from_today(3))
    response = post_review(client_for(user), booking)
    assert response.status_code == 400
    assert "booking_id" in response.json()


def test_a_booking_in_progress_cannot_be_reviewed_until_it_ends(client_for, user):
    now = timezone.now()
    booking = BookingFactory(user=user)
    # Started an hour ago, ends in an hour: the wall-clock fields don't matter to the rule, the period does.
    Booking.objects.filter(pk=booking.pk).update(period=(now - dt.timedelta(hours=1), now + dt.timedelta(hours=1)))
    assert post_review(client_for(user), booking).status_code == 400


def test_a_second_review_of_the_same_booking_is_409(client_for, user):
    booking = BookingFactory(user=user, finished=True)
    client = client_for(user)
    assert post_review(client, booking, rating=5).status_code == 201
    response = post_review(client, booking, rating=1)
    assert response.status_code == 409
    assert response.json()["code"] == "review_exists"
    chef = Chef.objects.get(pk=booking.chef_id)
    assert (chef.review_count, chef.rating) == (1, Decimal("5.00"))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"rating": 0}, "rating"),
        ({"rating": 6}, "rating"),
        ({"rating": 3.5}, "rating"),
        ({"rating": "good"}, "rating"),
        ({"rating": None}, "rating"),
        ({"rating": 10**40}, "rating"),
        ({"comment": "x" * 5001}, "comment"),
        ({"comment": ["a"]}, "comment"),
        ({"booking_id": 10**30}, "booking_id"),
        ({"booking_id": "abc"}, "booking_id"),
        ({"booking_id": -5}, "booking_id"),
    ],
)
def test_invalid_review_bodies_are_400_with_the_field(client_for, user, overrides, field):
    booking = BookingFactory(user=user, finished=True)
    response = post_review(client_for(user), booking, **overrides)
    assert response.status_code == 400
    assert field in response.json()
    assert not Review.objects.exists()


def test_reviews_are_not_listed_at_the_collection(client_for, user):
    assert client_for(user).get(REVIEWS).status_code == 405
    assert client_for(user).post(f"{REVIEWS}/", {}, format="json").status_code == 404


# --- a chef's reviews -------------------------------------------------------------------


def test_anyone_lists_a_chefs_reviews_newest_first(client_for):
    chef = ChefFactory()
    now = timezone.now()
    older = ReviewFactory(booking__chef=chef, created_at=now - dt.timedelta(days=2))
    tie_a = ReviewFactory(booking__chef=chef, created_at=now - dt.timedelta(days=1))
    tie_b = ReviewFactory(booking__chef=chef, created_at=now - dt.timedelta(days=1))
    newest = ReviewFactory(booking__chef=chef, created_at=now, comment="Wow")
    ReviewFactory()  # another chef's
    response = client_for(None).get(chef_reviews(chef))
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4
    assert [item["id"] for item in body["results"]] == [newest.pk, tie_a.pk, tie_b.pk, older.pk]
    assert body["results"][0] == {
        "id": newest.pk,
        "booking_id": newest.booking_id,
        "rating": newest.rating,
        "comment": "Wow",
        "created_at": body["results"][0]["created_at"],
    }


def test_an_inactive_chefs_reviews_are_404_except_to_staff_and_its_user(client_for, user, other_user, staff_user):
    chef = ChefFactory(is_active=False, owner=user)
    ReviewFactory(booking__chef=chef)
    assert client_for(None).get(chef_reviews(chef)).status_code == 404
    assert client_for(other_user).get(chef_reviews(chef)).status_code == 404
    assert client_for(user).get(chef_reviews(chef)).json()["count"] == 1
    assert client_for(staff_user).get(chef_reviews(chef)).json()["count"] == 1


def test_an_unknown_chefs_reviews_are_404(client_for):
    assert client_for(None).get("/api/coocook/chefs/424242/reviews").status_code == 404


@pytest.mark.parametrize("params", [{"per_page": "0"}, {"per_page": "101"}, {"per_page": "x"}, {"page": "0"}])
def test_bad_chef_review_pagination_is_400(client_for, params):
    chef = ChefFactory()
    assert client_for(None).get(chef_reviews(chef), params).status_code == 400


def test_a_chef_review_page_past_the_end_is_empty(client_for):
    review = ReviewFactory()
    response = client_for(None).get(chef_reviews(review.chef), {"page": "3", "per_page": "1", "sort": "x"})
    assert response.status_code == 200
    assert response.json()["results"] == []
    assert response.json()["count"] == 1


def test_chef_reviews_cost_three_queries_for_3_and_for_30_reviews(client_for, django_assert_num_queries):
    chef = ChefFactory()
    client = client_for(None)
    ReviewFactory.create_batch(3, booking__chef=chef)
    with django_assert_num_queries(3):  # the chef, the count, the page
        assert len(client.get(chef_reviews(chef), {"per_page": "100"}).json()["results"]) == 3
    ReviewFactory.create_batch(27, booking__chef=chef)
    with django_assert_num_queries(3):
        assert len(client.get(chef_reviews(chef), {"per_page": "100"}).json()["results"]) == 30


def test_signed_in_chef_reviews_cost_the_same_for_3_and_30(client_for, user):
    chef = ChefFactory()
    client = client_for(user)
    ReviewFactory.create_batch(3, booking__chef=chef)
    response, queries = get_queries(client, chef_reviews(chef), {"per_page": "100"})
    assert len(response.json()["results"]) == 3
    assert_query_budget(queries, domain=3)  # the chef, the count, the page
    ReviewFactory.create_batch(27, booking__chef=chef)
    response, queries = get_queries(client, chef_reviews(chef), {"per_page": "100"})
    assert len(response.json()["results"]) == 30
    assert_query_budget(queries, domain=3)
