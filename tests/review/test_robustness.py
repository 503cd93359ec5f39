"""Nothing a client can send makes the review API answer 500."""

from __future__ import annotations

import json

import pytest

from review.models import Application, Campaign
from tests.review.factories import ApplicationFactory, CampaignFactory

pytestmark = pytest.mark.django_db

ODD_VALUES = [
    None,
    True,
    -1,
    0,
    10**40,
    1e300,
    "",
    " ",
    "x" * 20_000,
    "\ud800",
    "\x00",
    "2099-01-01T00:00:00+25:00",
    "9999-12-31T23:59:59+14:00",
    "0001-01-01T00:00:00-14:00",
    [],
    {},
    [1, "a"],
    {"nested": {"deep": [1]}},
]
CAMPAIGN_FIELDS = ["title", "brand", "category", "description", "reward", "currency", "max_reviewers", "deadline"]


def _body(field: str, value: object) -> str:
    base = {
        "title": "t",
        "brand": "b",
        "category": "c",
        "reward": "1.00",
        "max_reviewers": 1,
        "deadline": "2099-01-01T00:00:00Z",
    }
    base[field] = value
    return json.dumps(base)


@pytest.mark.parametrize("value", ODD_VALUES)
@pytest.mark.parametrize("field", [*CAMPAIGN_FIELDS, "status"])
def test_odd_campaign_values_are_refused_or_accepted_but_never_500(client_for, staff_user, field, value):
    client = client_for(staff_user)
    created = client.post("/api/review/campaigns", _body(field, value), content_type="application/json")
    campaign = CampaignFactory.create()
    changed = client.patch(
        f"/api/review/campaigns/{campaign.pk}", json.dumps({field: value}), content_type="application/json"
    )
    assert created.status_code in (201, 400)
    assert changed.status_code in (200, 400)
    assert Campaign.objects.filter(applicant_count__gt=0).count() == 0


@pytest.mark.parametrize("value", ODD_VALUES)
def test_odd_application_bodies_are_refused_or_accepted_but_never_500(client_for, user, staff_user, value):
    campaign = CampaignFactory.create()
    applied = client_for(user).post(
        f"/api/review/campaigns/{campaign.pk}/applications",
        json.dumps({"message": value}),
        content_type="application/json",
    )
    application = ApplicationFactory.create()
    decided = client_for(staff_user).patch(
        f"/api/review/applications/{application.pk}", json.dumps({"status": value}), content_type="application/json"
    )
    assert applied.status_code in (201, 400)
    assert decided.status_code == 400
    assert Application.objects.filter(status="pending").count() == (2 if applied.status_code == 201 else 1)


@pytest.mark.parametrize(
    "query",
    [
        "status=",
        "page=&per_page=",
        "q=%00",
        "category=%ff%fe",
        "status=active&status=draft",
        "per_page=1e2",
        "q=%25%5F",
    ],
)
def test_odd_list_queries_never_500(client_for, query):
    CampaignFactory.create()
    response = client_for(None).get(f"/api/review/campaigns?{query}")
    assert response.status_code in (200, 400)


@pytest.mark.parametrize(
    "path", ["/api/review/campaigns", "/api/review/campaigns/1", "/api/review/campaigns/1/applications"]
)
@pytest.mark.parametrize("who", ["anonymous", "user", "staff"])
def test_options_requests_never_500(client_for, user, staff_user, path, who):
    CampaignFactory.create(pk=1)
    client = client_for({"anonymous": None, "user": user, "staff": staff_user}[who])
    response = client.options(path)
    assert response.status_code in (200, 401)


@pytest.mark.parametrize("who", ["user", "staff"])
def test_options_on_applications_never_500(client_for, user, staff_user, who):
    application = ApplicationFactory.create()
    client = client_for(user if who == "user" else staff_user)
    assert client.options("/api/review/applications").status_code == 200
    assert client.options(f"/api/review/applications/{application.pk}").status_code == 200
