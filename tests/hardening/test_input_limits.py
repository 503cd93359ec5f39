"""Input limits: page sizes, string lengths, numbers, nesting and headers are bounded, and going
past a bound is a 4xx that changes nothing, never a 500 (API.md "Conventions")."""

from __future__ import annotations

import json

import pytest

from coocook.models import Booking, Chef
from platform_core.models import User
from review.models import Campaign
from sns.models import SNSPost
from tests.coocook.factories import ChefFactory, days_from_today

pytestmark = pytest.mark.django_db

LISTS = [
    ("/api/coocook/chefs", False),
    ("/api/coocook/bookings", True),
    ("/api/payment/payments", True),
    ("/api/review/campaigns", False),
    ("/api/review/applications", True),
    ("/api/sns/posts", True),
]


@pytest.mark.parametrize(("path", "needs_user"), LISTS)
@pytest.mark.parametrize(
    "query",
    [
        "per_page=101",
        "per_page=0",
        "per_page=-1",
        "per_page=abc",
        "per_page=1e3",
        "per_page=" + "9" * 400,
        "page=0",
        "page=-5",
        "page=1.5",
        "page=" + "9" * 400,
    ],
)
def test_out_of_range_or_malformed_paging_is_400(path, needs_user, query, user, client_for):
    response = client_for(user if needs_user else None).get(f"{path}?{query}")
    assert response.status_code == 400, response.content
    assert set(response.json()) & {"page", "per_page"}


@pytest.mark.parametrize(("path", "needs_user"), LISTS)
def test_the_largest_page_size_is_100_and_a_page_past_the_end_is_empty(path, needs_user, user, client_for):
    client = client_for(user if needs_user else None)
    largest = client.get(f"{path}?per_page=100")
    assert largest.status_code == 200
    assert largest.json()["per_page"] == 100
    past = client.get(f"{path}?page=9999999")
    assert past.status_code == 200
    assert past.json()["results"] == []


@pytest.mark.parametrize(
    ("path", "param", "limit"),
    [
        ("/api/coocook/chefs", "q", 150),
        ("/api/coocook/chefs", "cuisine", 50),
        ("/api/review/campaigns", "q", 200),
        ("/api/review/campaigns", "category", 50),
    ],
)
def test_search_parameters_are_bounded(path, param, limit, api_client):
    assert api_client.get(path, {param: "x" * limit}).status_code == 200
    assert api_client.get(path, {param: "x" * (limit + 1)}).status_code == 400
    assert api_client.get(path, {param: "nul\x00byte"}).status_code == 400


def test_unknown_query_parameters_are_ignored_and_unknown_orderings_refused(api_client):
    assert api_client.get("/api/coocook/chefs", {"no_such_filter": "1", "__proto__": "x"}).status_code == 200
    assert api_client.get("/api/coocook/chefs", {"ordering": "password"}).status_code == 400
    assert api_client.get("/api/review/campaigns", {"status": "anything"}).status_code == 400


def _future_booking(chef: Chef, **changes) -> dict:
    return {
        "chef_id": chef.pk,
        "booking_date": days_from_today(10).isoformat(),
        "start_time": "18:00",
        "duration_hours": 2,
        "guests": 2,
        "notes": "",
        **changes,
    }


def _campaign(**changes) -> dict:
    return {
        "title": "T",
        "brand": "B",
        "category": "c",
        "reward": "1.00",
        "max_reviewers": 1,
        "deadline": "2099-01-01T00:00:00Z",
        **changes,
    }


def _chef(**changes) -> dict:
    return {"name": "N", "cuisine_type": "korean", "bio": "", "hourly_rate": "10.00", "currency": "KRW", **changes}


# (who posts, path, body with a field one past its limit, field, model whose rows must not change)
STRING_LIMITS = [
    (
        "anonymous",
        "/api/auth/register",
        lambda: {"email": "a@example.com", "password": "a-long-pass-phrase", "name": "n" * 151},
        "name",
        User,
    ),
    (
        "anonymous",
        "/api/auth/register",
        lambda: {"email": "a" * 250 + "@example.com", "password": "a-long-pass-phrase", "name": "n"},
        "email",
        User,
    ),
    (
        "anonymous",
        "/api/auth/register",
        lambda: {"email": "a@example.com", "password": "p" * 129, "name": "n"},
        "password",
        User,
    ),
    ("user", "/api/sns/schedule", lambda: {"platform": "twitter", "content": "c" * 5001}, "content", SNSPost),
    ("user", "/api/coocook/bookings", lambda: _future_booking(ChefFactory(), notes="n" * 2001), "notes", Booking),
    ("staff", "/api/coocook/chefs", lambda: _chef(name="n" * 151), "name", Chef),
    ("staff", "/api/coocook/chefs", lambda: _chef(bio="b" * 5001), "bio", Chef),
    ("staff", "/api/review/campaigns", lambda: _campaign(title="t" * 201), "title", Campaign),
    ("staff", "/api/review/campaigns", lambda: _campaign(description="d" * 10_001), "description", Campaign),
]


@pytest.mark.parametrize(
    ("who", "path", "body", "field", "model"), STRING_LIMITS, ids=[f"{p} {f}" for _, p, _, f, _ in STRING_LIMITS]
)
def test_strings_over_their_limit_are_400_and_create_nothing(
    who, path, body, field, model, user, staff_user, client_for
):
    caller = {"anonymous": None, "user": user, "staff": staff_user}[who]
    payload = body()
    before = model.objects.count()
    response = client_for(caller).post(path, payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert model.objects.count() == before


@pytest.mark.parametrize(
    "changes",
    [
        {"chef_id": 2**63},
        {"chef_id": 10**30},
        {"chef_id": -1},
        {"chef_id": "1; DROP TABLE coocook_booking"},
        {"duration_hours": 13},
        {"duration_hours": 10**20},
        {"guests": 0},
        {"guests": 21},
        {"guests": 2.5},
        {"booking_date": "2030-02-30"},
        {"booking_date": "99999-01-01"},
        {"start_time": "25:00"},
        {"start_time": "18:00:00.000000001"},
        {"notes": {"nested": ["object"]}},
        {"notes": None},
    ],
)
def test_numbers_dates_and_types_out_of_range_are_400(changes, user, client_for):
    chef = ChefFactory()
    response = client_for(user).post("/api/coocook/bookings", _future_booking(chef, **changes), format="json")
    assert response.status_code == 400, response.content
    assert not Booking.objects.exists()


@pytest.mark.parametrize("raw", ["1e999", "-1e999", "12345678901234567890.123", "NaN", "Infinity"])
def test_huge_or_special_money_values_are_400(raw, staff_user, client_for):
    body = json.dumps(_chef(hourly_rate="PLACEHOLDER")).replace('"PLACEHOLDER"', json.dumps(raw))
    response = client_for(staff_user).generic("POST", "/api/coocook/chefs", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert not Chef.objects.exists()


def test_money_written_as_a_bare_huge_number_is_400(staff_user, client_for):
    body = json.dumps(_chef()).replace('"10.00"', "1" + "0" * 400)
    response = client_for(staff_user).generic("POST", "/api/coocook/chefs", body, content_type="application/json")
    assert response.status_code == 400, response.content


def test_nesting_at_the_limit_is_parsed_and_one_level_deeper_is_400(api_client, settings):
    limit = settings.API_MAX_JSON_DEPTH
    # depth 1 is the outer object; the value of "name" adds the rest.
    at_limit = '{"name": ' + "[" * (limit - 1) + "]" * (limit - 1) + "}"
    too_deep = '{"name": ' + "[" * limit + "]" * limit + "}"
    parsed = api_client.generic("POST", "/api/auth/register", at_limit, content_type="application/json")
    assert parsed.status_code == 400
    assert "name" in parsed.json()  # reached validation: the body was parsed
    refused = api_client.generic("POST", "/api/auth/register", too_deep, content_type="application/json")
    assert refused.status_code == 400
    assert "nested deeper" in refused.json()["detail"]


def test_many_keys_or_a_long_array_inside_the_size_limit_are_handled(api_client):
    wide = json.dumps({f"k{i}": i for i in range(50_000)})
    assert len(wide) < 1024 * 1024
    assert api_client.generic("POST", "/api/auth/register", wide, content_type="application/json").status_code == 400
    long_list = json.dumps({"email": list(range(100_000))})
    assert (
        api_client.generic("POST", "/api/auth/register", long_list, content_type="application/json").status_code == 400
    )


def test_a_body_just_over_one_mebibyte_is_413_at_the_default_limit(api_client, settings):
    assert settings.API_MAX_BODY_BYTES == 1024 * 1024
    body = json.dumps({"email": "x@example.com", "password": "p", "name": "n" * (1024 * 1024)})
    response = api_client.generic("POST", "/api/auth/register", body, content_type="application/json")
    assert response.status_code == 413
    assert not User.objects.exists()


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_an_idempotency_key_outside_1_to_255_characters_is_400(key, user, client_for):
    response = client_for(user).post(
        "/api/sns/schedule", {"platform": "twitter", "content": "hi"}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    assert response.status_code == 400
    assert not SNSPost.objects.exists()


def test_form_and_multipart_bodies_are_415_not_parsed(user, client_for):
    client = client_for(user)
    form = client.post(
        "/api/sns/schedule", "platform=twitter&content=x", content_type="application/x-www-form-urlencoded"
    )
    assert form.status_code == 415
    multipart = client.post("/api/sns/schedule", {"platform": "twitter", "content": "x"}, format="multipart")
    assert multipart.status_code == 415
    assert not SNSPost.objects.exists()


def test_a_lone_surrogate_in_a_string_is_400_not_a_database_error(staff_user, client_for):
    body = (
        '{"title": "\\ud800", "brand": "B", "category": "c", "reward": "1.00", "max_reviewers": 1,'
        ' "deadline": "2099-01-01T00:00:00Z"}'
    )
    response = client_for(staff_user).generic("POST", "/api/review/campaigns", body, content_type="application/json")
    assert response.status_code == 400
    assert "title" in response.json()
    assert not Campaign.objects.exists()
