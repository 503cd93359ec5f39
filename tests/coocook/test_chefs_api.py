"""Chefs over HTTP: the public list and detail, staff creation, updates by staff or the chef's own user."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from coocook.models import Chef
from tests.coocook.factories import ChefFactory
from tests.coocook.helpers import assert_query_budget, get_queries

pytestmark = pytest.mark.django_db

CHEFS = "/api/coocook/chefs"
CHEF_FIELDS = {"id", "name", "cuisine_type", "bio", "hourly_rate", "currency", "rating", "review_count", "is_active"}


def chef_url(chef: Chef) -> str:
    return f"{CHEFS}/{chef.pk}"


def ids(response) -> list[int]:
    return [item["id"] for item in response.json()["results"]]


# --- list -------------------------------------------------------------------------------


def test_anyone_lists_active_chefs_with_the_documented_fields(client_for):
    chef = ChefFactory(name="Kim", hourly_rate=Decimal("120"))
    ChefFactory(is_active=False)
    response = client_for(None).get(CHEFS)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["page"] == 1
    assert body["per_page"] == 12
    assert body["next"] is None
    assert body["previous"] is None
    [item] = body["results"]
    assert set(item) == CHEF_FIELDS
    assert item["id"] == chef.pk
    assert item["hourly_rate"] == "120.00"
    assert item["currency"] == "KRW"
    assert item["rating"] == "0.00"
    assert item["review_count"] == 0
    assert item["is_active"] is True


def test_staff_also_see_only_active_chefs_in_the_list(client_for, staff_user):
    active = ChefFactory()
    ChefFactory(is_active=False, owner=staff_user)
    response = client_for(staff_user).get(CHEFS)
    assert response.status_code == 200
    assert ids(response) == [active.pk]


def test_the_list_works_with_a_token_too(client_for, user):
    chef = ChefFactory()
    response = client_for(user).get(CHEFS)
    assert response.status_code == 200
    assert ids(response) == [chef.pk]


def test_an_invalid_token_is_401_even_on_the_public_list(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = api_client.get(CHEFS)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_cuisine_filters_exactly(client_for):
    korean = ChefFactory(cuisine_type="korean")
    ChefFactory(cuisine_type="korean-fusion")
    ChefFactory(cuisine_type="Korean")
    response = client_for(None).get(CHEFS, {"cuisine": "korean"})
    assert ids(response) == [korean.pk]


def test_min_rating_keeps_chefs_rated_at_least_that(client_for):
    high = ChefFactory(rating=Decimal("4.50"))
    exact = ChefFactory(rating=Decimal("4.00"))
    ChefFactory(rating=Decimal("3.99"))
    response = client_for(None).get(CHEFS, {"min_rating": "4"})
    assert ids(response) == [high.pk, exact.pk]


@pytest.mark.parametrize("value", ["abc", "-0.01", "5.01", "NaN", "Infinity", "1e400", "4,5"])
def test_a_bad_min_rating_is_400(client_for, value):
    response = client_for(None).get(CHEFS, {"min_rating": value})
    assert response.status_code == 400
    assert "min_rating" in response.json()


def test_q_matches_a_case_insensitive_substring_of_the_name(client_for):
    match = ChefFactory(name="Park Ji-sung")
    ChefFactory(name="Lee")
    response = client_for(None).get(CHEFS, {"q": "ji-SUNG"})
    assert ids(response) == [match.pk]


def test_an_over_long_q_is_400_not_500(client_for):
    response = client_for(None).get(CHEFS, {"q": "x" * 5000})
    assert response.status_code == 400


def test_filters_combine(client_for):
    match = ChefFactory(name="Choi", cuisine_type="french", rating=Decimal("4.8"))
    ChefFactory(name="Choi", cuisine_type="korean", rating=Decimal("4.8"))
    ChefFactory(name="Choi", cuisine_type="french", rating=Decimal("2.0"))
    response = client_for(None).get(CHEFS, {"q": "cho", "cuisine": "french", "min_rating": "4.5"})
    assert ids(response) == [match.pk]


def test_the_default_order_is_best_rated_first_then_id(client_for):
    low = ChefFactory(rating=Decimal("3.00"))
    tie_a = ChefFactory(rating=Decimal("4.00"))
    tie_b = ChefFactory(rating=Decimal("4.00"))
    top = ChefFactory(rating=Decimal("5.00"))
    response = client_for(None).get(CHEFS)
    assert ids(response) == [top.pk, tie_a.pk, tie_b.pk, low.pk]


def test_every_ordering_value_orders_and_breaks_ties_by_id(client_for):
    now = timezone.now()
    a = ChefFactory(rating=Decimal("2.00"), hourly_rate=Decimal("100"), created_at=now - dt.timedelta(days=2))
    b = ChefFactory(rating=Decimal("4.00"), hourly_rate=Decimal("300"), created_at=now - dt.timedelta(days=1))
    c = ChefFactory(rating=Decimal("2.00"), hourly_rate=Decimal("100"), created_at=now)
    expected = {
        "rating": [a.pk, c.pk, b.pk],
        "-rating": [b.pk, a.pk, c.pk],
        "hourly_rate": [a.pk, c.pk, b.pk],
        "-hourly_rate": [b.pk, a.pk, c.pk],
        "-created_at": [c.pk, b.pk, a.pk],
    }
    client = client_for(None)
    for ordering, order in expected.items():
        response = client.get(CHEFS, {"ordering": ordering})
        assert response.status_code == 200
        assert ids(response) == order, ordering


@pytest.mark.parametrize("value", ["name", "created_at", "-id", "rating,id", "RATING"])
def test_an_unknown_ordering_is_400(client_for, value):
    response = client_for(None).get(CHEFS, {"ordering": value})
    assert response.status_code == 400
    assert "ordering" in response.json()


def test_unknown_query_parameters_are_ignored(client_for):
    chef = ChefFactory()
    response = client_for(None).get(CHEFS, {"colour": "blue", "status": "whatever", "cuisine_type": "x"})
    assert response.status_code == 200
    assert ids(response) == [chef.pk]


@pytest.mark.parametrize(
    "params",
    [{"per_page": "0"}, {"per_page": "101"}, {"per_page": "abc"}, {"page": "0"}, {"page": "-1"}, {"page": "x"}],
)
def test_bad_pagination_is_400(client_for, params):
    response = client_for(None).get(CHEFS, params)
    assert response.status_code == 400
    assert set(response.json()) <= {"page", "per_page"}


def test_a_page_past_the_end_is_empty_not_an_error(client_for):
    ChefFactory.create_batch(3)
    response = client_for(None).get(CHEFS, {"page": "99", "per_page": "2"})
    assert response.status_code == 200
    body = response.json()
    assert body["results"] == []
    assert body["count"] == 3
    assert body["next"] is None


def test_pages_link_to_each_other_with_absolute_urls(client_for):
    chefs = ChefFactory.create_batch(5)
    client = client_for(None)
    first = client.get(CHEFS, {"per_page": "2", "ordering": "-created_at"}).json()
    assert first["count"] == 5
    assert first["next"].startswith("http://testserver/api/coocook/chefs?")
    assert "page=2" in first["next"]
    assert "ordering=-created_at" in first["next"]
    second = client.get(first["next"]).json()
    assert second["previous"].startswith("http://testserver/")
    seen = [item["id"] for item in first["results"] + second["results"]]
    assert len(set(seen)) == 4
    assert set(seen) <= {chef.pk for chef in chefs}


def test_the_anonymous_list_costs_one_query_for_3_and_for_30_chefs(client_for, django_assert_num_queries):
    client = client_for(None)
    ChefFactory.create_batch(3)
    with django_assert_num_queries(1):  # the page, with the stored count riding along
        assert len(client.get(CHEFS, {"per_page": "100"}).json()["results"]) == 3
    ChefFactory.create_batch(27)
    with django_assert_num_queries(1):
        body = client.get(CHEFS, {"per_page": "100"}).json()
    assert (len(body["results"]), body["count"]) == (30, 30)


def test_an_empty_or_past_the_end_page_reads_the_stored_count_on_its_own(client_for, django_assert_num_queries):
    client = client_for(None)
    with django_assert_num_queries(2):  # the empty page, then the count
        assert client.get(CHEFS).json()["count"] == 0
    ChefFactory.create_batch(3)
    with django_assert_num_queries(2):
        body = client.get(CHEFS, {"page": "5"}).json()
    assert (body["count"], body["results"]) == (3, [])


def test_a_signed_in_list_costs_the_same_queries_for_3_and_30_chefs(client_for, user):
    client = client_for(user)
    ChefFactory.create_batch(3)
    response, queries = get_queries(client, CHEFS, {"per_page": "100"})
    assert len(response.json()["results"]) == 3
    assert_query_budget(queries, domain=1)  # the page, with the stored count
    ChefFactory.create_batch(27)
    response, queries = get_queries(client, CHEFS, {"per_page": "100"})
    assert len(response.json()["results"]) == 30
    assert_query_budget(queries, domain=1)


@pytest.mark.parametrize("path", [f"{CHEFS}/", f"{CHEFS}/1/", f"{CHEFS}/1/reviews/"])
def test_a_trailing_slash_is_404_not_a_redirect(client_for, path):
    ChefFactory(pk=1)
    response = client_for(None).get(path)
    assert response.status_code == 404


# --- detail -----------------------------------------------------------------------------


def test_anyone_reads_an_active_chef(client_for):
    chef = ChefFactory(bio="Temple food")
    response = client_for(None).get(chef_url(chef))
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= CHEF_FIELDS
    assert body["bio"] == "Temple food"


def test_an_inactive_chef_is_404_to_anonymous_and_other_users(client_for, user):
    chef = ChefFactory(is_active=False)
    for client in (client_for(None), client_for(user)):
        response = client.get(chef_url(chef))
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        assert "detail" in response.json()


def test_an_inactive_chef_is_visible_to_staff_and_its_own_user(client_for, user, staff_user):
    chef = ChefFactory(is_active=False, owner=user)
    for caller in (user, staff_user):
        response = client_for(caller).get(chef_url(chef))
        assert response.status_code == 200
        assert response.json()["is_active"] is False


@pytest.mark.parametrize("path", [f"{CHEFS}/999999", f"{CHEFS}/99999999999999999999999999", f"{CHEFS}/abc"])
def test_unknown_chef_ids_are_404(client_for, path):
    assert client_for(None).get(path).status_code == 404


# --- create -----------------------------------------------------------------------------


def new_chef(**overrides):
    body = {"name": "Han", "cuisine_type": "korean", "bio": "Kimchi", "hourly_rate": "75000.50", "currency": "KRW"}
    body.update(overrides)
    return body


def test_staff_create_a_chef(client_for, staff_user, user):
    response = client_for(staff_user).post(CHEFS, new_chef(owner_id=user.pk, is_active=False), format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) >= CHEF_FIELDS
    assert body["hourly_rate"] == "75000.50"
    assert body["rating"] == "0.00"
    assert body["is_active"] is False
    chef = Chef.objects.get(pk=body["id"])
    assert chef.owner_id == user.pk
    assert chef.bio == "Kimchi"


def test_a_new_chef_is_active_by_default_and_bio_is_optional(client_for, staff_user):
    body = new_chef()
    del body["bio"]
    response = client_for(staff_user).post(CHEFS, body, format="json")
    assert response.status_code == 201
    assert response.json()["is_active"] is True
    assert response.json()["bio"] == ""


def test_only_staff_create_chefs(client_for, user):
    assert client_for(user).post(CHEFS, new_chef(), format="json").status_code == 403
    anonymous = client_for(None).post(CHEFS, new_chef(), format="json")
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"] == "Token"
    assert not Chef.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 151}, "name"),
        ({"name": {"a": 1}}, "name"),
        ({"cuisine_type": "x" * 51}, "cuisine_type"),
        ({"bio": "x" * 5001}, "bio"),
        ({"hourly_rate": "-1"}, "hourly_rate"),
        ({"hourly_rate": "abc"}, "hourly_rate"),
        ({"hourly_rate": "123456789012"}, "hourly_rate"),
        ({"hourly_rate": "1e30"}, "hourly_rate"),
        ({"hourly_rate": "10.001"}, "hourly_rate"),
        ({"currency": "krw"}, "currency"),
        ({"currency": "KRWX"}, "currency"),
        ({"owner_id": 999999999}, "owner_id"),
        ({"owner_id": 10**30}, "owner_id"),
        ({"owner_id": "abc"}, "owner_id"),
        ({"is_active": "maybe"}, "is_active"),
    ],
)
def test_invalid_chef_bodies_are_400_with_the_field(client_for, staff_user, overrides, field):
    response = client_for(staff_user).post(CHEFS, new_chef(**overrides), format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Chef.objects.exists()


def test_a_chef_body_that_is_not_an_object_is_400(client_for, staff_user):
    response = client_for(staff_user).post(CHEFS, ["not", "an", "object"], format="json")
    assert response.status_code == 400


def test_a_body_that_is_not_json_is_400(client_for, staff_user):
    response = client_for(staff_user).post(CHEFS, "{not json", content_type="application/json")
    assert response.status_code == 400


# --- update -----------------------------------------------------------------------------


def test_staff_replace_a_chef_with_put(client_for, staff_user, user):
    chef = ChefFactory()
    response = client_for(staff_user).put(
        chef_url(chef), new_chef(name="Renamed", owner_id=user.pk, is_active=False), format="json"
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Renamed"
    assert response.json()["is_active"] is False
    chef.refresh_from_db()
    assert (chef.name, chef.owner_id, chef.is_active, chef.hourly_rate) == (
        "Renamed",
        user.pk,
        False,
        Decimal("75000.50"),
    )


def test_put_needs_the_whole_profile(client_for, staff_user):
    chef = ChefFactory()
    response = client_for(staff_user).put(chef_url(chef), {"name": "Only a name"}, format="json")
    assert response.status_code == 400
    assert {"cuisine_type", "hourly_rate", "currency"} <= set(response.json())


def test_the_chefs_own_user_patches_the_profile_and_later_reads_show_it(client_for, user):
    chef = ChefFactory(owner=user, name="Before")
    response = client_for(user).patch(chef_url(chef), {"name": "After", "hourly_rate": "99.90"}, format="json")
    assert response.status_code == 200
    assert response.json()["name"] == "After"
    assert client_for(None).get(chef_url(chef)).json()["hourly_rate"] == "99.90"
    assert client_for(None).get(CHEFS).json()["results"][0]["name"] == "After"


@pytest.mark.parametrize("body", [{"is_active": False}, {"owner_id": None}, {"name": "X", "is_active": True}])
def test_the_chefs_own_user_may_not_send_is_active_or_owner_id(client_for, user, body):
    chef = ChefFactory(owner=user, name="Same")
    response = client_for(user).patch(chef_url(chef), body, format="json")
    assert response.status_code == 403
    chef.refresh_from_db()
    assert (chef.is_active, chef.owner_id, chef.name) == (True, user.pk, "Same")


def test_staff_change_is_active_and_owner_id(client_for, staff_user, user):
    chef = ChefFactory()
    response = client_for(staff_user).patch(chef_url(chef), {"is_active": False, "owner_id": user.pk}, format="json")
    assert response.status_code == 200
    chef.refresh_from_db()
    assert (chef.is_active, chef.owner_id) == (False, user.pk)


def test_rating_and_review_count_are_read_only(client_for, staff_user):
    chef = ChefFactory(rating=Decimal("3.50"), review_count=2, rating_total=7)
    response = client_for(staff_user).patch(chef_url(chef), {"rating": "5.00", "review_count": 99}, format="json")
    assert response.status_code == 200
    assert response.json()["rating"] == "3.50"
    assert response.json()["review_count"] == 2
    chef.refresh_from_db()
    assert (chef.rating, chef.review_count) == (Decimal("3.50"), 2)


def test_other_users_get_403_on_a_chef_they_can_see(client_for, other_user):
    chef = ChefFactory(name="Kept")
    response = client_for(other_user).patch(chef_url(chef), {"name": "Stolen"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    put = client_for(other_user).put(chef_url(chef), new_chef(), format="json")
    assert put.status_code == 403
    chef.refresh_from_db()
    assert chef.name == "Kept"


def test_other_users_get_404_on_a_chef_they_cannot_see(client_for, other_user):
    chef = ChefFactory(is_active=False)
    response = client_for(other_user).patch(chef_url(chef), {"name": "X"}, format="json")
    assert response.status_code == 404


def test_the_owner_of_an_inactive_chef_may_edit_its_profile(client_for, user):
    chef = ChefFactory(is_active=False, owner=user)
    response = client_for(user).patch(chef_url(chef), {"bio": "Back soon"}, format="json")
    assert response.status_code == 200
    assert response.json()["bio"] == "Back soon"


def test_anonymous_updates_are_401(client_for):
    chef = ChefFactory()
    assert client_for(None).patch(chef_url(chef), {"name": "X"}, format="json").status_code == 401
    assert client_for(None).put(chef_url(chef), new_chef(), format="json").status_code == 401


@pytest.mark.parametrize(
    "body", [{"hourly_rate": "9999999999999"}, {"name": "x" * 151}, {"currency": 12}, {"owner_id": 10**30}]
)
def test_invalid_patches_are_400(client_for, staff_user, body):
    chef = ChefFactory(name="Kept")
    response = client_for(staff_user).patch(chef_url(chef), body, format="json")
    assert response.status_code == 400
    assert set(body) <= set(response.json())


def test_chefs_cannot_be_deleted_over_the_api(client_for, staff_user):
    chef = ChefFactory()
    assert client_for(staff_user).delete(chef_url(chef)).status_code == 405
    assert Chef.objects.filter(pk=chef.pk).exists()
