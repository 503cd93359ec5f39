"""Campaigns over HTTP (API.md "review"): list, detail, create, change."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from review.models import Campaign
from tests.review.factories import ApplicationFactory, CampaignFactory

pytestmark = pytest.mark.django_db

CAMPAIGNS = "/api/review/campaigns"
FIELDS = {
    "id",
    "title",
    "brand",
    "category",
    "description",
    "status",
    "reward",
    "currency",
    "max_reviewers",
    "applicant_count",
    "deadline",
    "created_at",
}
UTC_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def ids(response) -> list[int]:
    return [item["id"] for item in response.json()["results"]]


def future(days: int = 30) -> str:
    return (timezone.now() + timedelta(days=days)).isoformat()


def new_campaign(**overrides) -> dict:
    body = {
        "title": "Laneige Lip Sleeping Mask review",
        "brand": "Laneige",
        "category": "beauty",
        "description": "Use it every night for two weeks.",
        "reward": "50000.00",
        "max_reviewers": 20,
        "deadline": future(),
    }
    body.update(overrides)
    return body


# --- list -------------------------------------------------------------------------------


def test_anyone_lists_active_campaigns_newest_first(client_for):
    now = timezone.now()
    older = CampaignFactory.create(created_at=now - timedelta(days=2))
    newer = CampaignFactory.create(created_at=now - timedelta(days=1))
    CampaignFactory.create(status=Campaign.Status.DRAFT)
    CampaignFactory.create(status=Campaign.Status.CLOSED)

    response = client_for(None).get(CAMPAIGNS)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert ids(response) == [newer.pk, older.pk]
    item = body["results"][0]
    assert set(item) == FIELDS
    assert item["reward"] == "120.00"
    assert item["currency"] == "KRW"
    assert item["status"] == "active"
    assert UTC_Z.match(item["deadline"])
    assert UTC_Z.match(item["created_at"])


def test_the_list_works_with_a_token_too(client_for, user):
    campaign = CampaignFactory.create()
    response = client_for(user).get(CAMPAIGNS)
    assert response.status_code == 200
    assert ids(response) == [campaign.pk]


def test_an_invalid_token_is_401_even_on_the_public_list(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = api_client.get(CAMPAIGNS)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_campaigns_created_at_the_same_moment_are_ordered_by_id(client_for):
    moment = timezone.now()
    first, second, third = (CampaignFactory.create(created_at=moment) for _ in range(3))
    assert ids(client_for(None).get(CAMPAIGNS)) == [first.pk, second.pk, third.pk]


def test_closed_campaigns_are_listed_for_anyone_who_asks(client_for):
    closed = CampaignFactory.create(status=Campaign.Status.CLOSED)
    CampaignFactory.create()
    response = client_for(None).get(CAMPAIGNS, {"status": "closed"})
    assert response.status_code == 200
    assert ids(response) == [closed.pk]


def test_staff_can_list_drafts(client_for, staff_user):
    draft = CampaignFactory.create(status=Campaign.Status.DRAFT)
    CampaignFactory.create()
    response = client_for(staff_user).get(CAMPAIGNS, {"status": "draft"})
    assert response.status_code == 200
    assert ids(response) == [draft.pk]


@pytest.mark.parametrize("who", ["anonymous", "user"])
def test_listing_drafts_is_400_for_anyone_but_staff(client_for, user, who):
    CampaignFactory.create(status=Campaign.Status.DRAFT)
    response = client_for(user if who == "user" else None).get(CAMPAIGNS, {"status": "draft"})
    assert response.status_code == 400
    assert "status" in response.json()


@pytest.mark.parametrize("value", ["open", "ACTIVE", "pending", "x" * 500])
def test_an_unknown_status_is_400(client_for, staff_user, value):
    response = client_for(staff_user).get(CAMPAIGNS, {"status": value})
    assert response.status_code == 400
    assert "status" in response.json()


def test_category_filters_exactly(client_for):
    beauty = CampaignFactory.create(category="beauty")
    CampaignFactory.create(category="beauty-tools")
    CampaignFactory.create(category="food")
    response = client_for(None).get(CAMPAIGNS, {"category": "beauty"})
    assert ids(response) == [beauty.pk]


def test_q_matches_a_case_insensitive_substring_of_the_title(client_for):
    match = CampaignFactory.create(title="Cushion FOUNDATION trial")
    CampaignFactory.create(title="Lip tint", brand="Foundation Brand")
    response = client_for(None).get(CAMPAIGNS, {"q": "foundation"})
    assert ids(response) == [match.pk]


def test_q_treats_percent_and_underscore_literally(client_for):
    literal = CampaignFactory.create(title="100% cotton shirt")
    CampaignFactory.create(title="1000 cotton shirts")
    assert ids(client_for(None).get(CAMPAIGNS, {"q": "100%"})) == [literal.pk]


@pytest.mark.parametrize(("name", "value"), [("q", "x" * 201), ("category", "x" * 51), ("q", "a\x00b")])
def test_an_over_long_or_binary_filter_is_400(client_for, name, value):
    response = client_for(None).get(CAMPAIGNS, {name: value})
    assert response.status_code == 400
    assert name in response.json()


def test_unknown_query_parameters_are_ignored(client_for):
    campaign = CampaignFactory.create()
    response = client_for(None).get(CAMPAIGNS, {"colour": "blue", "ordering_typo": "x"})
    assert response.status_code == 200
    assert ids(response) == [campaign.pk]


def test_pages_carry_exact_counts_and_absolute_links(client_for):
    moment = timezone.now()
    campaigns = [CampaignFactory.create(created_at=moment - timedelta(minutes=i)) for i in range(5)]

    response = client_for(None).get(CAMPAIGNS, {"page": 2, "per_page": 2, "category": "beauty"})

    body = response.json()
    assert response.status_code == 200
    assert body["count"] == 5
    assert (body["page"], body["per_page"]) == (2, 2)
    assert ids(response) == [campaigns[2].pk, campaigns[3].pk]
    assert body["next"].startswith("http://testserver/api/review/campaigns?")
    assert "page=3" in body["next"]
    assert "category=beauty" in body["next"]
    assert "page=1" in body["previous"]


def test_a_page_past_the_end_is_empty(client_for):
    CampaignFactory.create()
    response = client_for(None).get(CAMPAIGNS, {"page": 50})
    assert response.status_code == 200
    assert response.json()["results"] == []
    assert response.json()["count"] == 1
    assert response.json()["next"] is None


@pytest.mark.parametrize(
    "params",
    [{"page": 0}, {"page": -1}, {"page": "two"}, {"per_page": 0}, {"per_page": 101}, {"per_page": "1.5"}],
)
def test_out_of_bounds_pagination_is_400(client_for, params):
    response = client_for(None).get(CAMPAIGNS, params)
    assert response.status_code == 400
    assert set(response.json()) <= {"page", "per_page"}


def test_a_huge_page_number_is_400_not_500(client_for):
    response = client_for(None).get(CAMPAIGNS, {"page": "9" * 40})
    assert response.status_code == 400


def _list_queries(client, params) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(CAMPAIGNS, {"per_page": 100, **params})
    assert response.status_code == 200
    return len(response.json()["results"]), [q["sql"] for q in queries.captured_queries]


@pytest.mark.parametrize("who", ["anonymous", "staff"])
def test_the_list_costs_the_same_queries_for_3_and_30_rows(client_for, staff_user, who):
    client = client_for(staff_user if who == "staff" else None)
    params = {"status": "draft"} if who == "staff" else {}
    status = Campaign.Status.DRAFT if who == "staff" else Campaign.Status.ACTIVE
    client.get(CAMPAIGNS, params)  # warm-up: the token lands in its cache
    CampaignFactory.create_batch(3, status=status)
    rows_3, queries_3 = _list_queries(client, params)
    CampaignFactory.create_batch(27, status=status)
    rows_30, queries_30 = _list_queries(client, params)

    assert (rows_3, rows_30) == (3, 30)
    assert len(queries_30) == len(queries_3)
    assert len([sql for sql in queries_30 if "review_campaign" in sql]) == 1  # page + stored count


def test_the_anonymous_list_costs_one_query(client_for, django_assert_num_queries):
    CampaignFactory.create_batch(30)
    client = client_for(None)
    with django_assert_num_queries(1):  # the page, with the stored count riding along
        response = client.get(CAMPAIGNS, {"per_page": 100})
    assert len(response.json()["results"]) == 30
    assert response.json()["count"] == 30


@pytest.mark.parametrize(
    "path",
    [CAMPAIGNS + "/", CAMPAIGNS + "/1/", CAMPAIGNS + "/1/applications/", "/api/review/applications/"],
)
def test_a_trailing_slash_is_404_not_a_redirect(client_for, staff_user, path):
    CampaignFactory.create(pk=1)
    response = client_for(staff_user).get(path)
    assert response.status_code == 404


# --- detail -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [Campaign.Status.ACTIVE, Campaign.Status.CLOSED])
def test_anyone_reads_a_published_campaign(client_for, status):
    campaign = CampaignFactory.create(status=status, reward=Decimal("120"))
    response = client_for(None).get(f"{CAMPAIGNS}/{campaign.pk}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == FIELDS
    assert body["id"] == campaign.pk
    assert body["reward"] == "120.00"


@pytest.mark.parametrize("who", ["anonymous", "user"])
def test_a_draft_is_404_to_non_staff(client_for, user, who):
    draft = CampaignFactory.create(status=Campaign.Status.DRAFT)
    response = client_for(user if who == "user" else None).get(f"{CAMPAIGNS}/{draft.pk}")
    assert response.status_code == 404
    assert set(response.json()) == {"detail", "code"}


def test_staff_reads_a_draft(client_for, staff_user):
    draft = CampaignFactory.create(status=Campaign.Status.DRAFT)
    response = client_for(staff_user).get(f"{CAMPAIGNS}/{draft.pk}")
    assert response.status_code == 200
    assert response.json()["status"] == "draft"


@pytest.mark.parametrize("campaign_id", ["987654", "9" * 30, "abc", "-1", "1.5"])
def test_an_unknown_or_malformed_campaign_id_is_404(client_for, campaign_id):
    response = client_for(None).get(f"{CAMPAIGNS}/{campaign_id}")
    assert response.status_code == 404


# --- create -----------------------------------------------------------------------------


def test_staff_creates_a_draft_in_krw_by_default(client_for, staff_user):
    response = client_for(staff_user).post(CAMPAIGNS, new_campaign(), format="json")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == FIELDS
    assert body["status"] == "draft"
    assert body["currency"] == "KRW"
    assert body["reward"] == "50000.00"
    assert body["applicant_count"] == 0
    assert UTC_Z.match(body["deadline"])
    stored = Campaign.objects.get(pk=body["id"])
    assert stored.title == "Laneige Lip Sleeping Mask review"
    assert stored.max_reviewers == 20


def test_staff_creates_an_active_campaign_in_another_currency(client_for, staff_user):
    deadline = "2099-06-30T18:00:00+09:00"
    response = client_for(staff_user).post(
        CAMPAIGNS, new_campaign(status="active", currency="usd", reward="19.9", deadline=deadline), format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["currency"], body["reward"]) == ("active", "USD", "19.90")
    assert body["deadline"] == "2099-06-30T09:00:00Z"
    assert client_for(None).get(f"{CAMPAIGNS}/{body['id']}").status_code == 200


def test_creating_needs_credentials(client_for):
    response = client_for(None).post(CAMPAIGNS, new_campaign(), format="json")
    assert response.status_code == 401
    assert not Campaign.objects.exists()


def test_creating_is_403_for_a_non_staff_user(client_for, user):
    response = client_for(user).post(CAMPAIGNS, new_campaign(), format="json")
    assert response.status_code == 403
    assert not Campaign.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"deadline": "2099-01-01T09:00:00"}, "deadline"),
        ({"deadline": "2000-01-01T09:00:00Z"}, "deadline"),
        ({"deadline": "tomorrow"}, "deadline"),
        ({"deadline": 1234567890}, "deadline"),
        ({"deadline": "9999-12-31T23:59:59-14:00"}, "deadline"),
        ({"reward": "-1.00"}, "reward"),
        ({"reward": "1" * 40}, "reward"),
        ({"reward": "12.345"}, "reward"),
        ({"reward": "NaN"}, "reward"),
        ({"reward": "Infinity"}, "reward"),
        ({"reward": [1]}, "reward"),
        ({"max_reviewers": 0}, "max_reviewers"),
        ({"max_reviewers": -5}, "max_reviewers"),
        ({"max_reviewers": 10**30}, "max_reviewers"),
        ({"max_reviewers": "ten"}, "max_reviewers"),
        ({"max_reviewers": 2.5}, "max_reviewers"),
        ({"max_reviewers": True}, "max_reviewers"),
        ({"title": "x" * 201}, "title"),
        ({"title": ""}, "title"),
        ({"title": {"a": 1}}, "title"),
        ({"title": "nul\x00byte"}, "title"),
        ({"brand": "b" * 101}, "brand"),
        ({"category": "c" * 51}, "category"),
        ({"description": "d" * 10_001}, "description"),
        ({"currency": "EURO"}, "currency"),
        ({"currency": "₩₩₩"}, "currency"),
        ({"status": "published"}, "status"),
        ({"status": None}, "status"),
    ],
)
def test_creating_with_a_bad_value_is_400_on_that_field(client_for, staff_user, overrides, field):
    response = client_for(staff_user).post(CAMPAIGNS, new_campaign(**overrides), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Campaign.objects.exists()


@pytest.mark.parametrize("missing", ["title", "brand", "category", "reward", "max_reviewers", "deadline"])
def test_creating_without_a_required_field_is_400(client_for, staff_user, missing):
    body = new_campaign()
    del body[missing]
    response = client_for(staff_user).post(CAMPAIGNS, body, format="json")
    assert response.status_code == 400
    assert missing in response.json()


@pytest.mark.parametrize("payload", ["[1, 2]", '"text"', "{not json", "null"])
def test_a_body_that_is_not_a_json_object_is_400(client_for, staff_user, payload):
    response = client_for(staff_user).post(CAMPAIGNS, payload, content_type="application/json")
    assert response.status_code == 400


def test_read_only_fields_in_the_body_are_ignored(client_for, staff_user):
    response = client_for(staff_user).post(
        CAMPAIGNS, new_campaign(applicant_count=7, id=424242, created_at="2001-01-01T00:00:00Z"), format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["applicant_count"] == 0
    assert body["id"] != 424242
    assert not body["created_at"].startswith("2001")


# --- change -----------------------------------------------------------------------------


def test_staff_changes_a_campaign_and_later_reads_show_it(client_for, staff_user):
    campaign = CampaignFactory.create(title="Old title", max_reviewers=10)
    client = client_for(staff_user)

    response = client.patch(
        f"{CAMPAIGNS}/{campaign.pk}", {"title": "New title", "max_reviewers": 15, "reward": "99.5"}, format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["title"], body["max_reviewers"], body["reward"]) == ("New title", 15, "99.50")
    detail = client_for(None).get(f"{CAMPAIGNS}/{campaign.pk}").json()
    assert (detail["title"], detail["max_reviewers"]) == ("New title", 15)
    listed = client_for(None).get(CAMPAIGNS).json()["results"][0]
    assert listed["title"] == "New title"


def test_staff_publishes_a_draft(client_for, staff_user):
    draft = CampaignFactory.create(status=Campaign.Status.DRAFT)
    response = client_for(staff_user).patch(f"{CAMPAIGNS}/{draft.pk}", {"status": "active"}, format="json")
    assert response.status_code == 200
    assert client_for(None).get(f"{CAMPAIGNS}/{draft.pk}").json()["status"] == "active"


def test_an_empty_patch_changes_nothing(client_for, staff_user):
    campaign = CampaignFactory.create(title="Same")
    response = client_for(staff_user).patch(f"{CAMPAIGNS}/{campaign.pk}", {}, format="json")
    assert response.status_code == 200
    assert response.json()["title"] == "Same"


def test_changing_needs_credentials(client_for):
    campaign = CampaignFactory.create(title="Same")
    response = client_for(None).patch(f"{CAMPAIGNS}/{campaign.pk}", {"title": "Hacked"}, format="json")
    assert response.status_code == 401
    campaign.refresh_from_db()
    assert campaign.title == "Same"


@pytest.mark.parametrize("status", [Campaign.Status.ACTIVE, Campaign.Status.CLOSED])
def test_a_non_staff_user_changing_a_visible_campaign_gets_403(client_for, user, status):
    campaign = CampaignFactory.create(status=status, title="Same")
    response = client_for(user).patch(f"{CAMPAIGNS}/{campaign.pk}", {"title": "Hacked"}, format="json")
    assert response.status_code == 403
    campaign.refresh_from_db()
    assert campaign.title == "Same"


def test_a_non_staff_user_changing_a_draft_gets_404(client_for, user):
    draft = CampaignFactory.create(status=Campaign.Status.DRAFT, title="Same")
    response = client_for(user).patch(f"{CAMPAIGNS}/{draft.pk}", {"title": "Hacked"}, format="json")
    assert response.status_code == 404
    draft.refresh_from_db()
    assert draft.title == "Same"


@pytest.mark.parametrize("campaign_id", ["987654", "9" * 30])
def test_changing_an_unknown_campaign_is_404(client_for, staff_user, campaign_id):
    response = client_for(staff_user).patch(f"{CAMPAIGNS}/{campaign_id}", {"title": "x"}, format="json")
    assert response.status_code == 404


def test_put_is_not_allowed(client_for, staff_user):
    campaign = CampaignFactory.create()
    response = client_for(staff_user).put(f"{CAMPAIGNS}/{campaign.pk}", new_campaign(), format="json")
    assert response.status_code == 405


def test_lowering_max_reviewers_below_the_applicants_is_400(client_for, staff_user):
    campaign = CampaignFactory.create(max_reviewers=5)
    ApplicationFactory.create_batch(3, campaign=campaign)

    response = client_for(staff_user).patch(f"{CAMPAIGNS}/{campaign.pk}", {"max_reviewers": 2}, format="json")

    assert response.status_code == 400
    assert "max_reviewers" in response.json()
    campaign.refresh_from_db()
    assert (campaign.max_reviewers, campaign.applicant_count) == (5, 3)


def test_lowering_max_reviewers_to_the_applicant_count_is_fine(client_for, staff_user):
    campaign = CampaignFactory.create(max_reviewers=5)
    ApplicationFactory.create_batch(3, campaign=campaign)
    response = client_for(staff_user).patch(f"{CAMPAIGNS}/{campaign.pk}", {"max_reviewers": 3}, format="json")
    assert response.status_code == 200
    assert response.json()["max_reviewers"] == 3


def test_the_database_itself_refuses_more_applicants_than_seats():
    campaign = CampaignFactory.create(max_reviewers=5)
    ApplicationFactory.create_batch(3, campaign=campaign)
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(max_reviewers=2)


def test_activating_a_campaign_whose_deadline_has_passed_is_400(client_for, staff_user):
    draft = CampaignFactory.create(status=Campaign.Status.DRAFT, deadline=timezone.now() - timedelta(hours=1))
    response = client_for(staff_user).patch(f"{CAMPAIGNS}/{draft.pk}", {"status": "active"}, format="json")
    assert response.status_code == 400
    assert "deadline" in response.json()


def test_reactivating_with_a_new_deadline_works(client_for, staff_user):
    closed = CampaignFactory.create(status=Campaign.Status.CLOSED, deadline=timezone.now() - timedelta(hours=1))
    response = client_for(staff_user).patch(
        f"{CAMPAIGNS}/{closed.pk}", {"status": "active", "deadline": future(7)}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "active"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"deadline": "2099-01-01T09:00:00"}, "deadline"),
        ({"deadline": "2001-01-01T09:00:00+09:00"}, "deadline"),
        ({"max_reviewers": 0}, "max_reviewers"),
        ({"max_reviewers": 10**20}, "max_reviewers"),
        ({"reward": "-0.01"}, "reward"),
        ({"title": ""}, "title"),
        ({"title": "t" * 201}, "title"),
        ({"status": "archived"}, "status"),
    ],
)
def test_changing_with_a_bad_value_is_400_on_that_field(client_for, staff_user, change, field):
    campaign = CampaignFactory.create(title="Same")
    response = client_for(staff_user).patch(f"{CAMPAIGNS}/{campaign.pk}", change, format="json")
    assert response.status_code == 400
    assert field in response.json()
    campaign.refresh_from_db()
    assert campaign.title == "Same"
