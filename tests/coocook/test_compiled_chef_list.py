"""The chef list page from SQL compiled once per shape (softfactory.query_shapes): byte for byte what
the ORM path renders, with a fixed number of queries per page."""

from __future__ import annotations

from decimal import Decimal

import pytest

from coocook.selectors import CHEF_PAGES
from softfactory import query_shapes
from tests.coocook.factories import ChefFactory
from tests.coocook.helpers import assert_query_budget, get_queries
from tests.softfactory.shapes import compiled_and_orm

pytestmark = pytest.mark.django_db

CHEFS = "/api/coocook/chefs"
PAGES = [
    {},
    {"per_page": 1},
    {"page": 2, "per_page": 3},
    {"page": 99},
    {"cuisine": "korean"},
    {"cuisine": "thai", "ordering": "hourly_rate"},
    {"cuisine": "nothing"},
    {"min_rating": "4.5", "ordering": "-hourly_rate"},
    {"min_rating": "0"},
    {"q": "kim"},
    {"q": "%"},
    {"q": "a_b", "ordering": "-created_at"},
    {"q": "\\"},
    {"q": "'"},
    {"q": "ü"},
    {"q": "", "cuisine": ""},
    {"q": "x", "page": 5},
    {"cuisine": "korean", "min_rating": "4", "q": "i", "ordering": "rating", "per_page": 100},
]


@pytest.fixture
def chefs() -> None:
    names = ["Kim Ji-su", "KIM Min", "100% Kim", "a_b", "axb", "back\\slash", "O'Brien", "Müller", "plain", "Lee"]
    for i, name in enumerate(names):
        ChefFactory(
            name=name,
            cuisine_type=("korean", "thai")[i % 2],
            rating=Decimal(("4.50", "5.00", "0.00", "4.50", "3.10")[i % 5]),
            hourly_rate=Decimal((50000, 70000, 50000)[i % 3]),
        )
    ChefFactory(name="Kim inactive", is_active=False)


@pytest.mark.parametrize("params", PAGES)
def test_each_chef_list_page_is_byte_for_byte_what_the_orm_path_renders(client_for, chefs, params, monkeypatch):
    client = client_for(None)
    compiled, orm, shapes_used = compiled_and_orm(client, CHEFS, params, CHEF_PAGES, monkeypatch)
    assert compiled.status_code == orm.status_code == 200
    assert shapes_used == [True]
    assert compiled.content == orm.content
    assert compiled["ETag"] == orm["ETag"]


@pytest.mark.parametrize(
    ("params", "queries"),
    [
        ({"per_page": 1}, 1),  # the page, with the stored count riding along
        ({"per_page": 100, "cuisine": "korean"}, 1),
        ({"page": 50}, 2),  # an empty page, then the stored count
        ({"q": "kim"}, 2),  # no stored count: COUNT, then the page
        ({"q": "kim", "page": 50}, 1),  # past the end: the count only
        ({"min_rating": "4.5", "per_page": 100}, 2),
    ],
)
def test_the_chef_list_runs_the_same_queries_on_the_first_and_later_requests_of_a_shape(
    client_for, chefs, params, queries
):
    CHEF_PAGES.query.clear()
    before = query_shapes.compilations[CHEF_PAGES.query.name]
    client = client_for(None)
    for _ in range(3):  # the first compiles the shape (no query), the others reuse it
        response, sql = get_queries(client, CHEFS, params)
        assert response.status_code == 200
        assert_query_budget(sql, domain=queries)
    assert query_shapes.compilations[CHEF_PAGES.query.name] - before == 1
