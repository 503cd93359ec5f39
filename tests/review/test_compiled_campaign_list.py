"""The campaign list page from SQL compiled once per shape (softfactory.query_shapes): byte for byte
what the ORM path renders, with a fixed number of queries per page."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from review.models import Campaign
from review.selectors import CAMPAIGN_PAGES
from softfactory import query_shapes
from tests.review.factories import CampaignFactory
from tests.softfactory.shapes import compiled_and_orm

pytestmark = pytest.mark.django_db

CAMPAIGNS = "/api/review/campaigns"
PAGES = [
    {},
    {"per_page": 1, "page": 2},
    {"page": 99},
    {"status": "closed"},
    {"category": "food"},
    {"category": "nothing"},
    {"q": "serum"},
    {"q": "%"},
    {"q": "_"},
    {"q": "'"},
    {"q": "ü", "category": "beauty"},
    {"q": "x", "page": 3},
]


@pytest.fixture
def campaigns() -> None:
    titles = ["Serum 100%", "Mask_2", "Lip 'tint'", "Green tea serum", "Ünïcode cream"]
    for i in range(12):
        CampaignFactory(
            title=titles[i % 5],
            category=("beauty", "food")[i % 2],
            status=(Campaign.Status.ACTIVE, Campaign.Status.CLOSED, Campaign.Status.DRAFT)[i % 3],
        )


def review_queries(client: Any, params: dict[str, Any]) -> tuple[Any, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(CAMPAIGNS, params)
    return response, [q["sql"] for q in captured.captured_queries if "review_" in q["sql"]]


@pytest.mark.parametrize("params", PAGES)
def test_each_campaign_list_page_is_byte_for_byte_what_the_orm_path_renders(client_for, campaigns, params, monkeypatch):
    client = client_for(None)
    compiled, orm, shapes_used = compiled_and_orm(client, CAMPAIGNS, params, CAMPAIGN_PAGES, monkeypatch)
    assert compiled.status_code == orm.status_code == 200
    assert shapes_used == [True]
    assert compiled.content == orm.content


def test_staff_draft_lists_are_compiled_too_and_match_the_orm_path(client_for, staff_user, campaigns, monkeypatch):
    client = client_for(staff_user)
    compiled = client.get(CAMPAIGNS, {"status": "draft", "per_page": 2})
    monkeypatch.setattr(CAMPAIGN_PAGES.query, "shape", lambda arguments: None)
    orm = client.get(CAMPAIGNS, {"status": "draft", "per_page": 2})
    assert compiled.status_code == 200
    assert compiled.json()["count"] == 4
    assert compiled.content == orm.content


@pytest.mark.parametrize(
    ("params", "queries"),
    [
        ({"per_page": 1}, 1),  # the page, with the stored count riding along
        ({"per_page": 100, "category": "food"}, 1),
        ({"page": 50}, 2),  # an empty page, then the stored count
        ({"q": "serum"}, 2),  # no stored count: COUNT, then the page
        ({"q": "serum", "page": 50}, 1),  # past the end: the count only
    ],
)
def test_the_campaign_list_runs_the_same_queries_on_the_first_and_later_requests_of_a_shape(
    client_for, campaigns, params, queries
):
    CAMPAIGN_PAGES.query.clear()
    before = query_shapes.compilations[CAMPAIGN_PAGES.query.name]
    client = client_for(None)
    for _ in range(3):  # the first compiles the shape (no query), the others reuse it
        response, sql = review_queries(client, params)
        assert response.status_code == 200
        assert len(sql) == queries, sql
    assert query_shapes.compilations[CAMPAIGN_PAGES.query.name] - before == 1
