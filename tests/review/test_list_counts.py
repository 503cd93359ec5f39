"""Stored campaign counts (review.CampaignCount): exact after every kind of write, and what the list reads."""

from __future__ import annotations

import threading
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from review import services
from review.models import Campaign, CampaignCount
from tests.platform_core.factories import UserFactory
from tests.review.factories import CampaignFactory

CAMPAIGNS = "/api/review/campaigns"


def stored() -> dict[tuple[str, str], int]:
    """The stored counts; a key whose campaigns are all gone keeps a zero row, which counts as absent."""
    rows = CampaignCount.objects.using(DEFAULT_DB_ALIAS).values_list("status", "category", "n")
    return {(status, category): n for status, category, n in rows if n}


def actual() -> dict[tuple[str, str], int]:
    rows = Campaign.objects.using(DEFAULT_DB_ALIAS).values_list("status", "category").annotate(n=Count("id"))
    return {(status, category): n for status, category, n in rows.order_by()}


def assert_exact() -> None:
    assert stored() == actual()


def immediate_constraints() -> None:
    """Run this transaction's pending deferred FK checks (TRUNCATE refuses them)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


# --- every write path ---------------------------------------------------------------------


@pytest.mark.django_db
def test_creating_and_saving_campaigns_keeps_the_counts_exact():
    draft = CampaignFactory(status=Campaign.Status.DRAFT, category="beauty")
    CampaignFactory.create_batch(2, category="food")
    assert stored() == {("draft", "beauty"): 1, ("active", "food"): 2}
    draft.status = Campaign.Status.ACTIVE
    draft.category = "food"
    draft.save()
    assert stored() == {("active", "food"): 3}
    assert_exact()


@pytest.mark.django_db
def test_taking_a_seat_changes_no_count():
    campaign = CampaignFactory(category="food")
    services.campaign_apply(campaign_id=campaign.pk, user=UserFactory())
    assert Campaign.objects.get(pk=campaign.pk).applicant_count == 1
    assert stored() == {("active", "food"): 1}


@pytest.mark.django_db
def test_update_bulk_create_and_delete_keep_the_counts_exact():
    CampaignFactory.create_batch(3, category="food")
    Campaign.objects.filter(category="food").update(status=Campaign.Status.CLOSED)
    assert stored() == {("closed", "food"): 3}
    Campaign.objects.bulk_create(CampaignFactory.build_batch(4, category="tech"))
    assert stored() == {("closed", "food"): 3, ("active", "tech"): 4}
    Campaign.objects.filter(category="food").delete()
    Campaign.objects.filter(category="tech").first().delete()
    assert stored() == {("active", "tech"): 3}
    assert_exact()


@pytest.mark.django_db
def test_raw_sql_and_the_seeders_copy_are_counted():
    UserFactory.create_batch(5)
    CampaignFactory(category="food")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE review_campaign SET status = 'closed' WHERE category = 'food'")
    assert stored() == {("closed", "food"): 1}
    call_command("seed_review", scale="demo", random_seed=3, stdout=StringIO())
    assert sum(stored().values()) == Campaign.objects.count() > 1
    assert_exact()


@pytest.mark.django_db
def test_truncate_empties_the_counts():
    CampaignFactory.create_batch(2)
    immediate_constraints()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE review_campaign CASCADE")
    assert not CampaignCount.objects.exists()


@pytest.mark.django_db
def test_a_rolled_back_transaction_leaves_the_counts_as_they_were():
    CampaignFactory.create_batch(2, category="food")

    def write_then_fail() -> None:
        with transaction.atomic():
            CampaignFactory.create_batch(3, category="tech")
            Campaign.objects.update(status=Campaign.Status.CLOSED)
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert stored() == {("active", "food"): 2}
    assert_exact()


@pytest.mark.django_db(transaction=True)
def test_two_transactions_adding_campaigns_to_one_key_both_count():
    first_inserted, release_first = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        with transaction.atomic():
            CampaignFactory(category="food")
            first_inserted.set()
            release_first.wait(10)

    def second() -> None:
        first_inserted.wait(10)
        with transaction.atomic():
            CampaignFactory(category="food")

    def run(target) -> threading.Thread:
        def body() -> None:
            try:
                target()
            except BaseException as exc:
                errors.append(exc)
            finally:
                connections.close_all()

        thread = threading.Thread(target=body)
        thread.start()
        return thread

    threads = [run(first), run(second)]
    try:
        deadline = time.monotonic() + 10
        with connection.cursor() as cursor:
            waiting = 0
            while not waiting and time.monotonic() < deadline:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                waiting = cursor.fetchone()[0]
                time.sleep(0.02)
        assert waiting, "the second writer never waited on the first"
    finally:
        release_first.set()
        for thread in threads:
            thread.join(20)
    assert errors == []
    assert stored() == {("active", "food"): 2}


# --- what the list reads ------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [{}, {"category": "food"}, {"status": "closed"}, {"category": "none-here"}, {"q": "serum"}],
)
def test_the_lists_count_is_the_real_count(client_for, params):
    CampaignFactory.create_batch(3, category="food")
    CampaignFactory.create_batch(2, category="tech")
    CampaignFactory(category="food", status=Campaign.Status.CLOSED)
    real = Campaign.objects.filter(status=params.get("status", "active"))
    if "category" in params:
        real = real.filter(category=params["category"])
    if "q" in params:
        real = real.filter(title__icontains=params["q"])
    body = client_for(None).get(CAMPAIGNS, {**params, "per_page": 2}).json()
    assert body["count"] == real.count()


def _list_sql(client, params) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(CAMPAIGNS, params)
    assert response.status_code == 200
    return [query["sql"] for query in captured.captured_queries]


def _counts_campaigns(sql: str) -> bool:
    return "COUNT(*)" in sql.upper() and '"review_campaign"' in sql


@pytest.mark.django_db
def test_a_stored_key_list_reads_the_stored_count_and_never_counts_campaigns(client_for):
    CampaignFactory.create_batch(30, category="food")
    client = client_for(None)
    small = _list_sql(client, {"per_page": 1})
    large = _list_sql(client, {"per_page": 100, "category": "food"})
    assert len(small) == len(large) == 1  # the page, with the stored count as a scalar subquery
    for queries in (small, large):
        assert not [sql for sql in queries if _counts_campaigns(sql)]
        assert '"review_campaigncount"' in queries[0]
    assert any(_counts_campaigns(sql) for sql in _list_sql(client, {"q": "serum"}))  # the control


@pytest.mark.django_db
def test_recount_lists_finds_a_tampered_campaign_count_and_fix_repairs_it():
    CampaignFactory.create_batch(2, category="food")
    CampaignCount.objects.filter(category="food").update(n=7)
    out = StringIO()
    with pytest.raises(CommandError, match="differ"):
        call_command("recount_lists", stdout=out)
    assert "review.CampaignCount (status='active', category='food'): stored 7, actual 2" in out.getvalue()
    call_command("recount_lists", fix=True, stdout=StringIO())
    assert stored() == {("active", "food"): 2}
    call_command("recount_lists", stdout=StringIO())
