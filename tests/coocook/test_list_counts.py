"""Stored chef counts (coocook.ChefCount): exact after every kind of write, and what the list reads."""

from __future__ import annotations

import threading
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Count, F
from django.test.utils import CaptureQueriesContext

from coocook.models import Chef, ChefCount
from tests.coocook.factories import ChefFactory
from tests.platform_core.factories import UserFactory

CHEFS = "/api/coocook/chefs"


def stored() -> dict[tuple[bool, str], int]:
    """The stored counts; a key whose chefs are all gone keeps a zero row, which counts as absent."""
    rows = ChefCount.objects.using(DEFAULT_DB_ALIAS).values_list("is_active", "cuisine_type", "n")
    return {(is_active, cuisine): n for is_active, cuisine, n in rows if n}


def actual() -> dict[tuple[bool, str], int]:
    rows = Chef.objects.using(DEFAULT_DB_ALIAS).values_list("is_active", "cuisine_type").annotate(n=Count("id"))
    return {(is_active, cuisine): n for is_active, cuisine, n in rows.order_by()}


def immediate_constraints() -> None:
    """Run this transaction's pending deferred FK checks (TRUNCATE and ALTER TABLE refuse them)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def assert_exact() -> None:
    assert stored() == actual()


# --- every write path ---------------------------------------------------------------------


@pytest.mark.django_db
def test_creating_chefs_counts_them_per_activity_and_cuisine():
    ChefFactory.create_batch(3, cuisine_type="korean")
    ChefFactory(cuisine_type="thai", is_active=False)
    assert stored() == {(True, "korean"): 3, (False, "thai"): 1}
    assert_exact()


@pytest.mark.django_db
def test_saving_a_chef_inactive_or_into_another_cuisine_moves_its_count():
    chef, _ = ChefFactory.create_batch(2, cuisine_type="korean")
    chef.is_active = False
    chef.save(update_fields=["is_active"])
    assert stored() == {(True, "korean"): 1, (False, "korean"): 1}
    chef.is_active = True
    chef.cuisine_type = "french"
    chef.save()
    assert stored() == {(True, "korean"): 1, (True, "french"): 1}
    assert_exact()


@pytest.mark.django_db
def test_a_rating_update_changes_no_count():
    chef = ChefFactory(cuisine_type="korean")
    Chef.objects.filter(pk=chef.pk).update(rating=F("rating") + 1, review_count=F("review_count") + 1)
    assert stored() == {(True, "korean"): 1}


@pytest.mark.django_db
def test_update_on_a_queryset_moves_every_row_it_touches():
    ChefFactory.create_batch(4, cuisine_type="korean")
    ChefFactory.create_batch(2, cuisine_type="thai")
    Chef.objects.filter(cuisine_type="korean").update(is_active=False)
    Chef.objects.filter(cuisine_type="thai").update(cuisine_type="vegan")
    assert stored() == {(False, "korean"): 4, (True, "vegan"): 2}
    assert_exact()


@pytest.mark.django_db
def test_bulk_create_counts_every_row():
    Chef.objects.bulk_create(
        Chef(name=f"Bulk {i}", cuisine_type=("korean", "thai")[i % 2], hourly_rate=10, is_active=i % 3 != 0)
        for i in range(30)
    )
    assert sum(stored().values()) == 30
    assert_exact()


@pytest.mark.django_db
def test_deleting_one_chef_or_a_queryset_uncounts_them():
    chef = ChefFactory(cuisine_type="korean")
    ChefFactory.create_batch(3, cuisine_type="thai")
    chef.delete()
    assert stored() == {(True, "thai"): 3}
    Chef.objects.filter(cuisine_type="thai").delete()
    assert stored() == {}
    assert_exact()


@pytest.mark.django_db
def test_raw_sql_writes_are_counted_too():
    ChefFactory.create_batch(3, cuisine_type="korean")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE coocook_chef SET cuisine_type = 'fusion' WHERE id IN (SELECT min(id) FROM coocook_chef)")
        cursor.execute(
            "INSERT INTO coocook_chef (name, cuisine_type, bio, hourly_rate, currency, rating, rating_total,"
            " review_count, is_active, created_at) VALUES ('Raw', 'korean', '', 1, 'KRW', 0, 0, 0, false, now())"
        )
    assert stored() == {(True, "korean"): 2, (True, "fusion"): 1, (False, "korean"): 1}
    assert_exact()


@pytest.mark.django_db
def test_the_seeders_copy_is_counted():
    UserFactory.create_batch(3)
    ChefFactory(cuisine_type="korean")
    immediate_constraints()  # the seeder alters the table: no deferred FK checks may be pending
    call_command("seed_coocook", scale="demo", seed=11, stdout=StringIO())
    assert sum(stored().values()) == 31
    assert len(stored()) > 2  # the seeder spreads chefs over cuisines and both activities
    assert_exact()


@pytest.mark.django_db
def test_truncate_empties_the_counts():
    ChefFactory.create_batch(3)
    immediate_constraints()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE coocook_chef CASCADE")
    assert not ChefCount.objects.exists()
    ChefFactory(cuisine_type="thai")
    assert stored() == {(True, "thai"): 1}


@pytest.mark.django_db
def test_a_rolled_back_transaction_leaves_the_counts_as_they_were():
    ChefFactory.create_batch(2, cuisine_type="korean")
    before = stored()

    def write_then_fail() -> None:
        with transaction.atomic():
            ChefFactory.create_batch(5, cuisine_type="thai")
            Chef.objects.filter(cuisine_type="korean").update(is_active=False)
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert stored() == before == {(True, "korean"): 2}
    assert_exact()


# --- concurrent writers -------------------------------------------------------------------


def _in_thread(target, errors: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            target()
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
        finally:
            connections.close_all()  # this thread's connections

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _wait_for_lock_waiters(expected: int, timeout: float = 10.0) -> None:
    """Until `expected` sessions of the test database wait on a lock (a real conflict, not luck)."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0] >= expected:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"fewer than {expected} sessions ever waited on a lock")
            time.sleep(0.02)


@pytest.mark.parametrize("existing_key", [False, True])
@pytest.mark.django_db(transaction=True)
def test_two_transactions_adding_chefs_to_one_cuisine_both_count(existing_key):
    if existing_key:
        ChefFactory(cuisine_type="korean")
    first_inserted, release_first = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        with transaction.atomic():
            ChefFactory(cuisine_type="korean")
            first_inserted.set()
            release_first.wait(10)

    def second() -> None:
        first_inserted.wait(10)
        with transaction.atomic():
            ChefFactory(cuisine_type="korean")  # waits on the first's count row until it commits

    threads = [_in_thread(first, errors), _in_thread(second, errors)]
    try:
        _wait_for_lock_waiters(1)
    finally:
        release_first.set()
        for thread in threads:
            thread.join(20)
    assert errors == []
    assert stored() == {(True, "korean"): 3 if existing_key else 2}
    assert_exact()


@pytest.mark.django_db(transaction=True)
def test_a_statement_takes_its_count_rows_in_key_order():
    ChefFactory(cuisine_type="american")
    ChefFactory(cuisine_type="zambian")
    holder_inserted, release_holder = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def holder() -> None:  # holds the "american" count row
        with transaction.atomic():
            ChefFactory(cuisine_type="american")
            holder_inserted.set()
            release_holder.wait(10)

    def writer() -> None:  # listed zambian first; must queue on "american" holding nothing
        holder_inserted.wait(10)
        with transaction.atomic():
            Chef.objects.bulk_create(
                [
                    Chef(name="Z", cuisine_type="zambian", hourly_rate=1),
                    Chef(name="A", cuisine_type="american", hourly_rate=1),
                ]
            )

    threads = [_in_thread(holder, errors), _in_thread(writer, errors)]
    try:
        _wait_for_lock_waiters(1)
        with transaction.atomic(), connection.cursor() as cursor:
            # Had the writer locked "zambian" first, this would fail with LockNotAvailable.
            cursor.execute("SELECT n FROM coocook_chefcount WHERE cuisine_type = 'zambian' FOR UPDATE NOWAIT")
            assert cursor.fetchone() == (1,)
    finally:
        release_holder.set()
        for thread in threads:
            thread.join(20)
    assert errors == []
    assert stored() == {(True, "american"): 3, (True, "zambian"): 2}


@pytest.mark.django_db(transaction=True)
def test_writers_touching_two_cuisines_in_opposite_order_never_deadlock():
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(cuisines: tuple[str, str]) -> None:
        start.wait(10)
        for i in range(40):
            with transaction.atomic():
                Chef.objects.bulk_create(Chef(name=f"{c} {i}", cuisine_type=c, hourly_rate=1) for c in cuisines)
                Chef.objects.filter(name=f"{cuisines[0]} {i}").update(is_active=False)

    threads = [
        _in_thread(lambda: writer(("korean", "thai")), errors),
        _in_thread(lambda: writer(("thai", "korean")), errors),
    ]
    for thread in threads:
        thread.join(60)
    assert errors == []  # a deadlock would surface here as OperationalError
    assert sum(stored().values()) == 160
    assert_exact()


# --- what the list reads ------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [{}, {"cuisine": "korean"}, {"cuisine": "nothing-here"}, {"q": "Chef"}, {"min_rating": "0"}],
)
def test_the_lists_count_is_the_real_count(client_for, params):
    ChefFactory.create_batch(4, cuisine_type="korean")
    ChefFactory.create_batch(3, cuisine_type="thai")
    ChefFactory(cuisine_type="korean", is_active=False)
    real = Chef.objects.filter(is_active=True)
    if "cuisine" in params:
        real = real.filter(cuisine_type=params["cuisine"])
    body = client_for(None).get(CHEFS, {**params, "per_page": 2}).json()
    assert body["count"] == real.count()
    assert len(body["results"]) == min(2, real.count())


def _list_sql(client, params) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(CHEFS, params)
    assert response.status_code == 200
    return [query["sql"] for query in captured.captured_queries]


def _counts_chefs(sql: str) -> bool:
    return "COUNT(*)" in sql.upper() and '"coocook_chef"' in sql


@pytest.mark.django_db
def test_a_stored_key_list_reads_the_stored_count_and_never_counts_chefs(client_for):
    ChefFactory.create_batch(30, cuisine_type="korean")
    client = client_for(None)
    small = _list_sql(client, {"per_page": 1})
    large = _list_sql(client, {"per_page": 100, "cuisine": "korean"})
    assert len(small) == len(large) == 1  # the page, with the stored count as a scalar subquery
    for queries in (small, large):
        assert not [sql for sql in queries if _counts_chefs(sql)]
        assert '"coocook_chefcount"' in queries[0]
    # The control: a filter that isn't a stored key still counts chefs.
    assert any(_counts_chefs(sql) for sql in _list_sql(client, {"q": "Chef"}))


@pytest.mark.django_db
def test_an_empty_stored_key_reads_the_empty_page_then_the_stored_count(client_for):
    ChefFactory(cuisine_type="korean")
    queries = _list_sql(client_for(None), {"cuisine": "thai"})
    assert len(queries) == 2
    assert queries[1].startswith("SELECT") and '"coocook_chefcount"' in queries[1]
    assert not [sql for sql in queries if _counts_chefs(sql)]


# --- recount_lists ------------------------------------------------------------------------


@pytest.mark.django_db
def test_recount_lists_finds_tampered_counts_and_fix_repairs_them():
    ChefFactory.create_batch(3, cuisine_type="korean")
    ChefFactory(cuisine_type="thai")
    call_command("recount_lists", stdout=StringIO())  # exact: no error
    ChefCount.objects.filter(cuisine_type="korean").update(n=F("n") + 5)
    ChefCount.objects.filter(cuisine_type="thai").delete()
    ChefCount.objects.create(is_active=False, cuisine_type="ghost", n=2)

    out = StringIO()
    with pytest.raises(CommandError, match="3 stored list count"):
        call_command("recount_lists", stdout=out)
    assert "coocook.ChefCount (is_active=True, cuisine_type='korean'): stored 8, actual 3" in out.getvalue()
    assert "cuisine_type='thai'): stored 0, actual 1" in out.getvalue()

    out = StringIO()
    call_command("recount_lists", fix=True, stdout=out)
    assert "3 stored list count(s) rewritten" in out.getvalue()
    assert_exact()
    call_command("recount_lists", stdout=StringIO())
