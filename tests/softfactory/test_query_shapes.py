"""Query shapes (softfactory.query_shapes): SQL compiled once per shape answers exactly what the ORM
answers, with the same queries, on the alias the router chooses; anything unverifiable falls back."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from coocook.models import Chef
from coocook.selectors import CHEF_ORDERINGS, CHEF_PAGES, chef_list
from review.models import Campaign
from review.selectors import CAMPAIGN_PAGES, campaign_list, campaign_page_queries
from softfactory import query_shapes
from softfactory.api import TOTAL_ANNOTATION, Pagination, ShapedList
from softfactory.cache import reading_from
from softfactory.db_router import current_state, decisions, routing_scope, use_primary
from softfactory.query_shapes import ShapedQuery
from tests.coocook.factories import ChefFactory
from tests.platform_core.factories import UserFactory
from tests.review.factories import CampaignFactory
from tests.stack import wait_for_replay

T0 = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)

# Names that LIKE escaping, quoting and case folding must get right.
CHEF_NAMES = [
    "Kim Ji-su",
    "KIM Min",
    "kimchi Lee",
    "100% Kim",
    "50%off",
    "a_b",
    "axb",
    "back\\slash",
    "O'Brien",
    "Müller",
    "Zoë",
    "a%b",
    "plain",
    'Quote "Q"',
]
QUERIES = [None, "%", "_", "\\", "'", "kim", "ü", "ZOË", "a_b", "a%b", '"q"', "nothing"]
MIN_RATINGS = [None, Decimal("4.5"), Decimal("4.50"), Decimal("0"), Decimal("5")]
CUISINES = [None, "korean", "nothing"]


@pytest.fixture
def chefs(db) -> list[Chef]:
    ratings = [
        "4.50",
        "4.50",
        "0.00",
        "5.00",
        "3.20",
        "4.50",
        "0.00",
        "4.99",
        "4.50",
        "2.00",
        "5.00",
        "1.00",
        "4.50",
        "0",
    ]
    made = [
        ChefFactory(
            name=name,
            cuisine_type=("korean", "thai", "korean", "french")[i % 4],
            rating=Decimal(ratings[i]),
            hourly_rate=Decimal((50000, 70000, 50000, 90000)[i % 4]),
            created_at=T0 + dt.timedelta(hours=i // 3),  # ties, broken by id
        )
        for i, name in enumerate(CHEF_NAMES)
    ]
    ChefFactory(name="Kim inactive", is_active=False, cuisine_type="korean", rating=Decimal("5.00"))
    ChefFactory(name="a_b inactive", is_active=False, cuisine_type="thai")
    return made


@pytest.fixture(autouse=True)
def fresh_shapes() -> None:
    """Every test starts with empty shape caches, so compile counts are its own."""
    CHEF_PAGES.query.clear()
    CAMPAIGN_PAGES.query.clear()


def pagination(page: int, per_page: int) -> Pagination:
    return Pagination(Request(APIRequestFactory().get("/", {"page": page, "per_page": per_page})))


def snapshot(rows: list[Any], *, without: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
    """Everything a serializer could see of each instance: class, attributes and ORM state."""
    return [
        (
            type(row),
            {k: v for k, v in vars(row).items() if k != "_state" and k not in without},
            row._state.db,
            row._state.adding,
        )
        for row in rows
    ]


def attributes(rows: list[Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in vars(row).items() if k != "_state"} for row in rows]


def orm_paginate(page: Pagination, pages: ShapedList, arguments: dict[str, Any]) -> tuple[list[Any], int]:
    """What the list read before query shapes: `paginate` over freshly built querysets."""
    queryset, count = pages.build(**arguments)
    return page.paginate(queryset, count=count)


def assert_same_pages(pages: ShapedList, plain: Any, arguments: dict[str, Any]) -> int:
    """Every page (per_page 1 and 100, one past the end) as the compiled path and as the ORM
    reads it; returns the total."""
    rows_queryset = plain(**arguments)
    total = rows_queryset.count()
    for per_page in (1, 100):
        last = max((total + per_page - 1) // per_page, 1)
        for page in range(1, last + 2):
            compiled_rows, compiled_total = pagination(page, per_page).paginate_shaped(pages, **arguments)
            orm_rows, orm_total = orm_paginate(pagination(page, per_page), pages, arguments)
            assert (compiled_total, snapshot(compiled_rows)) == (orm_total, snapshot(orm_rows)), (arguments, page)
            offset = (page - 1) * per_page
            plain_rows = list(rows_queryset[offset : offset + per_page])
            assert snapshot(compiled_rows, without=(TOTAL_ANNOTATION,)) == snapshot(plain_rows)
            assert compiled_total == total
    return total


# --- the same answers as the ORM --------------------------------------------------------------


@pytest.mark.parametrize("ordering", list(CHEF_ORDERINGS))
def test_the_compiled_chef_page_equals_the_orm_for_every_filter_page_and_size(chefs, ordering):
    totals = []
    for cuisine, min_rating, q in itertools.product(CUISINES, MIN_RATINGS, QUERIES):
        arguments = {"cuisine": cuisine, "min_rating": min_rating, "q": q, "ordering": ordering}
        assert CHEF_PAGES.query.shape(arguments) is not None, arguments  # the compiled path, not the fallback
        totals.append(assert_same_pages(CHEF_PAGES, chef_list, arguments))
    assert max(totals) == len(CHEF_NAMES)  # the unfiltered list: every active chef
    assert 0 in totals and any(0 < t < len(CHEF_NAMES) for t in totals)


def test_like_wildcards_in_q_match_only_themselves(chefs):
    def names(q: str) -> set[str]:
        rows, _total = pagination(1, 100).paginate_shaped(
            CHEF_PAGES, cuisine=None, min_rating=None, q=q, ordering="-rating"
        )
        return {row.name for row in rows}

    assert names("a_b") == {"a_b"}  # not "axb": `_` is escaped
    assert names("%") == {"100% Kim", "50%off", "a%b"}
    assert names("\\") == {"back\\slash"}
    assert names("'") == {"O'Brien"}
    assert names("üLL") == {"Müller"}


def test_the_compiled_campaign_page_equals_the_orm_for_every_filter_page_and_size(db):
    for i in range(9):
        CampaignFactory(
            title=("Serum 100%", "Mask_2", "Lip 'tint'", "Tea", "Ünïcode")[i % 5],
            category=("beauty", "food")[i % 2],
            status=(Campaign.Status.ACTIVE, Campaign.Status.CLOSED, Campaign.Status.DRAFT)[i % 3],
            created_at=T0 + dt.timedelta(hours=i // 2),
        )
    totals = []
    for status, category, q in itertools.product(
        ["active", "closed", "draft"], [None, "beauty", "nothing"], [None, "%", "_", "'", "ü", "mask", "x"]
    ):
        arguments = {"status": status, "category": category, "q": q}
        assert CAMPAIGN_PAGES.query.shape(arguments) is not None, arguments
        totals.append(assert_same_pages(CAMPAIGN_PAGES, campaign_list, arguments))
    assert max(totals) == 3 and 0 in totals


# --- compiled once per shape ------------------------------------------------------------------


def test_each_shape_is_compiled_once_then_reused_with_new_values(chefs):
    name = CHEF_PAGES.query.name
    before = query_shapes.compilations[name]

    def read(**arguments: Any) -> None:
        pagination(1, 12).paginate_shaped(CHEF_PAGES, **{"min_rating": None, "q": None, **arguments})

    for cuisine in ("korean", "thai", "french", "nothing"):
        read(cuisine=cuisine, ordering="-rating")
    assert query_shapes.compilations[name] - before == 1
    for q in ("kim", "%", "a_b"):
        read(cuisine="korean", q=q, ordering="-rating")
    assert query_shapes.compilations[name] - before == 2  # a filter more: one new shape
    read(cuisine="thai", q="lee", ordering="hourly_rate")
    read(cuisine="french", q="o", ordering="hourly_rate")
    assert query_shapes.compilations[name] - before == 3  # another ordering: one more
    assert len(CHEF_PAGES.query) == 3


def test_the_shape_cache_keeps_only_the_most_recently_used_shapes(chefs):
    query = ShapedQuery(lambda **kw: chef_list(**kw), values=("cuisine", "min_rating", "q"), max_shapes=2)
    base = {"cuisine": "korean", "min_rating": None, "q": None}
    compiled = []
    for ordering in ("rating", "-rating", "hourly_rate", "-rating", "rating"):
        before = query_shapes.compilations[query.name]
        assert query.shape({**base, "ordering": ordering}) is not None
        compiled.append(query_shapes.compilations[query.name] - before)
    assert compiled == [1, 1, 1, 0, 1]  # "rating" was evicted by "hourly_rate"; "-rating" was kept
    assert len(query) == 2


def sql_and_values(shape: Any) -> tuple[Any, ...]:
    return shape.rows_sql, shape.count_sql, [(slot.name, slot.constant) for slot in shape.slots]


def test_threads_share_the_shape_cache_and_each_gets_its_own_shape(db):
    query = ShapedQuery(lambda **kw: chef_list(**kw), values=("cuisine", "min_rating", "q"), max_shapes=3)
    reference = ShapedQuery(lambda **kw: chef_list(**kw), values=("cuisine", "min_rating", "q"))
    expected = {
        ordering: reference.shape({"cuisine": "x", "min_rating": None, "q": "y", "ordering": ordering})
        for ordering in CHEF_ORDERINGS
    }
    orderings = list(CHEF_ORDERINGS)
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            start.wait(10)
            for n in range(60):
                ordering = orderings[(worker + n) % len(orderings)]
                shape = query.shape({"cuisine": f"c{n}", "min_rating": None, "q": f"q{worker}", "ordering": ordering})
                assert shape is not None
                assert sql_and_values(shape) == sql_and_values(expected[ordering]), ordering
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(query) <= 3
    assert all(expected.values())


# --- what falls back to the ORM ----------------------------------------------------------------


def lowered_name(*, q: str, ordering: str) -> Any:
    return Chef.objects.filter(name=q.lower()).order_by(ordering)


def stripped_name(*, q: str, ordering: str) -> Any:
    return Chef.objects.filter(name=q.strip()).order_by(ordering)


def whole_and_lowered(*, q: str, ordering: str) -> Any:
    return Chef.objects.filter(name=q).exclude(name=q.lower() + "!").order_by(ordering)


def first_chef_of_cuisine(*, cuisine: str, ordering: str) -> Any:
    first = Chef.objects.filter(cuisine_type=cuisine).order_by("id").first()  # a query while building
    return Chef.objects.filter(pk=first.pk if first else 0).order_by(ordering)


def chefs_with_owners(*, cuisine: str, ordering: str) -> Any:
    return Chef.objects.select_related("owner").filter(cuisine_type=cuisine).order_by(ordering)


def rated_only_if_truthy(*, min_rating: Decimal | None, ordering: str) -> Any:
    chefs = Chef.objects.all()
    if min_rating:
        chefs = chefs.filter(rating__gte=min_rating)
    return chefs.order_by(ordering)


@pytest.mark.parametrize(
    ("build", "arguments"),
    [
        (lowered_name, {"q": "PLAIN"}),  # the value is transformed on its way in
        (stripped_name, {"q": " plain "}),
        (whole_and_lowered, {"q": "plain"}),  # one parameter is the value, another is derived from it
        (first_chef_of_cuisine, {"cuisine": "korean"}),  # the build queries the database
        (chefs_with_owners, {"cuisine": "korean"}),  # select_related: more than one model per row
        (rated_only_if_truthy, {"min_rating": Decimal("0")}),  # 0 is absent to this build, not to sentinels
    ],
)
def test_a_shape_that_cannot_be_verified_falls_back_to_the_orm_with_the_same_answer(chefs, build, arguments):
    arguments = {**arguments, "ordering": "id"}
    query = ShapedQuery(build, values=[name for name in arguments if name != "ordering"])
    assert query.shape(arguments) is None
    before = query_shapes.compilations[query.name]
    assert query.shape(arguments) is None
    assert query_shapes.compilations[query.name] == before  # the verdict is remembered, not recomputed
    pages = ShapedList(lambda **kw: (build(**kw), None), values=query.values)
    compiled_rows, compiled_total = pagination(1, 100).paginate_shaped(pages, **arguments)
    assert pages.query.shape(arguments) is None
    orm = build(**arguments)
    assert (compiled_total, snapshot(compiled_rows)) == (orm.count(), snapshot(list(orm[:100])))
    assert compiled_total >= 1


def test_a_build_that_ignores_falsy_values_is_still_compiled_for_truthy_and_absent_ones(chefs):
    query = ShapedQuery(rated_only_if_truthy, values=["min_rating"])
    assert query.shape({"min_rating": Decimal("4.5"), "ordering": "id"}) is not None
    assert query.shape({"min_rating": None, "ordering": "id"}) is not None


def test_an_empty_q_which_the_chef_list_ignores_is_not_compiled_as_a_filter(chefs):
    arguments = {"cuisine": None, "min_rating": None, "q": "", "ordering": "-rating"}
    assert CHEF_PAGES.query.shape(arguments) is None
    rows, total = pagination(1, 100).paginate_shaped(CHEF_PAGES, **arguments)
    assert total == len(CHEF_NAMES)
    assert len(rows) == len(CHEF_NAMES)


@pytest.mark.parametrize("min_rating", [4.5, Decimal("NaN"), Decimal("Infinity")])
def test_values_sentinels_cannot_stand_for_are_read_through_the_orm(chefs, min_rating):
    arguments = {"cuisine": None, "min_rating": min_rating, "q": None, "ordering": "-rating"}
    assert CHEF_PAGES.query.key(arguments) is None
    assert CHEF_PAGES.query.shape(arguments) is None
    assert len(CHEF_PAGES.query) == 0


def test_a_values_queryset_is_not_compiled(chefs):
    query = ShapedQuery(lambda *, cuisine: Chef.objects.filter(cuisine_type=cuisine).values("id"), values=["cuisine"])
    assert query.shape({"cuisine": "korean"}) is None


# --- queries and routing ------------------------------------------------------------------------


def count_queries(read: Any, *args: Any) -> int:
    with CaptureQueriesContext(connection) as captured:
        read(*args)
    return len(captured.captured_queries)


@pytest.mark.parametrize("per_page", [1, 100])
def test_a_page_costs_the_same_queries_as_the_orm_path(chefs, per_page):
    stored = {"cuisine": "korean", "min_rating": None, "q": None, "ordering": "-rating"}
    counted = {"cuisine": "korean", "min_rating": Decimal("1"), "q": "i", "ordering": "rating"}
    for arguments, in_range, past_end in ((stored, 1, 2), (counted, 2, 1)):
        for page, expected in ((1, in_range), (1000, past_end)):
            shaped = count_queries(
                lambda p, a: pagination(p, per_page).paginate_shaped(CHEF_PAGES, **a), page, arguments
            )
            orm = count_queries(lambda p, a: orm_paginate(pagination(p, per_page), CHEF_PAGES, a), page, arguments)
            assert shaped == orm == expected, (arguments, page)


@pytest.fixture
def replicated_chefs() -> None:
    """Committed chefs every replica has replayed (the test is transactional, on every alias)."""
    owner = UserFactory()
    for i in range(5):
        ChefFactory(cuisine_type="korean", name=f"Kim {i}", rating=Decimal("4.50"), owner=owner if i == 0 else None)
    wait_for_replay()


def reasons(gained: Counter[tuple[str, str]]) -> Counter[tuple[bool, str]]:
    """Routing decisions with the replica's name left out (the router picks one at random)."""
    return Counter({(alias in settings.REPLICA_ALIASES, reason): n for (alias, reason), n in gained.items()})


def captured_by_alias(read: Any) -> tuple[Any, dict[str, int]]:
    contexts = {alias: CaptureQueriesContext(connections[alias]) for alias in connections}
    for context in contexts.values():
        context.__enter__()
    try:
        result = read()
    finally:
        for context in contexts.values():
            context.__exit__(None, None, None)
    return result, {alias: len(c.captured_queries) for alias, c in contexts.items() if c.captured_queries}


@pytest.mark.django_db(transaction=True, databases="__all__")
@pytest.mark.parametrize(
    "arguments",
    [
        {"cuisine": "korean", "min_rating": None, "q": None, "ordering": "-rating"},  # stored count: 1 query
        {"cuisine": "korean", "min_rating": Decimal("4"), "q": "kim", "ordering": "rating"},  # counted: 2
    ],
)
def test_the_compiled_page_reads_on_the_replica_the_router_chooses_with_the_same_decisions(replicated_chefs, arguments):
    def read(paginate: Any) -> tuple[tuple[list[Chef], int], str | None, Counter[tuple[str, str]]]:
        before = decisions.copy()
        with routing_scope():
            result = paginate(pagination(1, 12))
            chosen = current_state().replica
        return result, chosen, decisions - before

    ((rows, total), chosen, gained), queries = captured_by_alias(
        lambda: read(lambda page: page.paginate_shaped(CHEF_PAGES, **arguments))
    )
    assert chosen in settings.REPLICA_ALIASES
    assert {row._state.db for row in rows} == {chosen}
    assert queries == {chosen: 1 if arguments["q"] is None else 2}
    assert total == len(rows) == 5
    ((orm_rows, orm_total), _orm_chosen, orm_gained), orm_queries = captured_by_alias(
        lambda: read(lambda page: orm_paginate(page, CHEF_PAGES, arguments))
    )
    assert reasons(gained) == reasons(orm_gained)
    assert sum(orm_queries.values()) == sum(queries.values())
    assert (total, attributes(rows)) == (orm_total, attributes(orm_rows))


@pytest.mark.django_db(transaction=True, databases="__all__")
@pytest.mark.parametrize("alias", ["replica_2", "default"])
def test_a_cache_fill_pinned_to_an_alias_reads_there(replicated_chefs, alias):
    arguments = {"cuisine": "korean", "min_rating": None, "q": None, "ordering": "-rating"}
    with routing_scope(), reading_from(alias):
        (rows, total), queries = captured_by_alias(lambda: pagination(1, 3).paginate_shaped(CHEF_PAGES, **arguments))
    assert queries == {alias: 1}
    assert {row._state.db for row in rows} == {alias}
    assert (len(rows), total) == (3, 5)


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_use_primary_sends_the_compiled_page_to_the_primary():
    arguments = {"status": "active", "category": None, "q": None}
    CampaignFactory()
    wait_for_replay()
    with routing_scope(), use_primary():
        (rows, total), queries = captured_by_alias(
            lambda: pagination(1, 12).paginate_shaped(CAMPAIGN_PAGES, **arguments)
        )
    assert queries == {"default": 1}
    assert [row._state.db for row in rows] == ["default"]
    assert total == 1
    assert campaign_page_queries(**arguments)[1] is not None  # a stored count: one query per page
