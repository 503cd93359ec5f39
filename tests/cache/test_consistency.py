"""No stale response, ever: the overlap race, stampedes, early refresh, a mixed read/write workload."""

from __future__ import annotations

import random
import threading
import time
from decimal import Decimal

import pytest
from django.db.models import Q
from rest_framework.test import APIClient

from coocook import selectors
from coocook.models import Chef
from softfactory import cache
from tests.cache.conftest import anonymous, close_thread_connections, fill_source_metric, requests_metric
from tests.cache.conftest import clients as many_clients
from tests.coocook.factories import BookingFactory, ChefFactory, days_from_today
from tests.platform_core.factories import StaffFactory, UserFactory
from tests.stack import wait_for_replay

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

CHEFS = "/api/coocook/chefs"


@pytest.mark.parametrize("pause_at", ["after_lookup", "before_store"])
def test_a_filler_paused_after_reading_the_generation_cannot_hide_a_concurrent_write(client_for, pause_at):
    chef = ChefFactory(name="Old name")
    staff = client_for(StaffFactory())
    url = f"{CHEFS}/{chef.pk}"
    wait_for_replay()
    paused, resume = threading.Event(), threading.Event()

    def pause(view: str) -> None:
        if threading.current_thread().name == "filler":
            paused.set()
            assert resume.wait(10)

    cache.hooks[pause_at].append(pause)
    answers: dict[str, object] = {}

    def filler() -> None:
        try:
            answers["filler"] = anonymous().get(url)
        finally:
            close_thread_connections()

    thread = threading.Thread(target=filler, name="filler")
    thread.start()
    assert paused.wait(10)
    # The write commits and bumps while the filler holds the generation it read (and, at
    # before_store, the old row too).
    assert staff.patch(url, {"name": "New name"}, format="json").status_code == 200
    resume.set()
    thread.join(10)
    if pause_at == "before_store":
        assert answers["filler"].json()["name"] == "Old name"  # what it read, for its own request only
    fresh = anonymous().get(url)
    assert fresh.json()["name"] == "New name"
    assert fresh["X-Cache"] == "miss"  # the filler's entry went under the old generation
    assert anonymous().get(url).json()["name"] == "New name"


def test_fifty_concurrent_requests_on_a_cold_key_make_exactly_one_fill():
    ChefFactory.create_batch(5)
    wait_for_replay()
    computations: list[str] = []
    lock = threading.Lock()

    def slow_fill(view: str) -> None:
        with lock:
            computations.append(view)
        time.sleep(0.3)

    cache.hooks["before_query"].append(slow_fill)
    clients = many_clients(50)
    start = threading.Barrier(50)
    responses: list[object] = [None] * 50

    def request(i: int) -> None:
        try:
            start.wait(10)
            responses[i] = clients[i].get(CHEFS, {"per_page": "3"})
        finally:
            close_thread_connections()

    fills_before = sum(cache.fills.values())
    threads = [threading.Thread(target=request, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert computations == ["chefs.list"]
    assert sum(cache.fills.values()) == fills_before + 1
    assert all(r.status_code == 200 for r in responses)
    assert len({r.content for r in responses}) == 1
    assert sorted(r["X-Cache"] for r in responses).count("miss") == 1  # the filler; the rest waited for its entry


def entry(soft_in: float, delta: float) -> cache.Entry:
    return cache.Entry(b"{}", time.time() + soft_in, delta, 'W/"x"', "application/json")


def test_xfetch_refreshes_early_with_a_probability_rising_towards_the_soft_expiry(monkeypatch):
    monkeypatch.setattr(cache, "clock", time.time)
    refresh = cache.CachedRead._refresh_early
    monkeypatch.setattr(cache, "draw", lambda: 0.5)
    assert not refresh(entry(soft_in=5.0, delta=0.01))  # far from expiry
    assert refresh(entry(soft_in=-0.1, delta=0.01))  # past the soft expiry: always
    # 50 ms before expiry with a 10 ms fill: refresh once -ln(1 - r) * 0.01 >= 0.05, r >= 0.9933.
    assert not refresh(entry(soft_in=0.05, delta=0.01))
    monkeypatch.setattr(cache, "draw", lambda: 0.999)
    assert refresh(entry(soft_in=0.05, delta=0.01))


def test_an_entry_past_its_soft_expiry_is_refreshed_once_within_its_generation(monkeypatch, settings):
    chef = ChefFactory(name="Early")
    url = f"{CHEFS}/{chef.pk}"
    first = anonymous().get(url)
    assert first["X-Cache"] == "miss"
    later = time.time() + settings.RESPONSE_CACHE_TTL_SECONDS * 0.85  # soft-expired, still in Redis
    monkeypatch.setattr(cache, "clock", lambda: later)
    monkeypatch.setattr(cache, "draw", lambda: 0.5)
    refreshes = requests_metric("chefs", "early_refresh")
    clients = many_clients(10)
    start = threading.Barrier(10)
    outcomes: list[str] = []

    def read(client: APIClient) -> None:
        try:
            start.wait(10)
            response = client.get(url)
            assert response.json()["name"] == "Early"
            outcomes.append(response["X-Cache"])
        finally:
            close_thread_connections()

    cache.hooks["before_query"].append(lambda view: time.sleep(0.2))
    threads = [threading.Thread(target=read, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["hit"] * 9 + ["refresh"]  # one refresher; the rest served the entry
    assert requests_metric("chefs", "early_refresh") == refreshes + 1
    assert anonymous().get(url)["X-Cache"] == "hit"  # the refreshed entry has a new soft expiry


# --- the mixed workload -----------------------------------------------------------------

VARIANTS = [
    {},
    {"cuisine": "korean", "ordering": "hourly_rate", "per_page": "5"},
    {"q": "chef", "page": "2", "per_page": "4", "ordering": "-created_at"},
]


def expected_page(params: dict[str, str]) -> tuple[int, list[tuple]]:
    """A fresh read of the primary, independent of the cache's own code path."""
    chefs = Chef.objects.using("default").filter(is_active=True)
    if "cuisine" in params:
        chefs = chefs.filter(cuisine_type=params["cuisine"])
    if "q" in params:
        chefs = chefs.filter(Q(name__icontains=params["q"]))
    chefs = chefs.order_by(*selectors.CHEF_ORDERINGS[params.get("ordering", "-rating")])
    per_page, page = int(params.get("per_page", 12)), int(params.get("page", 1))
    rows = chefs[(page - 1) * per_page : page * per_page]
    return chefs.count(), [(c.pk, c.name, f"{c.rating:.2f}", c.review_count, f"{c.hourly_rate:.2f}") for c in rows]


def seen_page(response) -> tuple[int, list[tuple]]:
    body = response.json()
    return body["count"], [
        (i["id"], i["name"], i["rating"], i["review_count"], i["hourly_rate"]) for i in body["results"]
    ]


def test_a_mixed_workload_hits_over_90_percent_fills_from_replicas_and_is_never_stale(client_for):
    rng = random.Random(6)
    staff = client_for(StaffFactory())
    chefs = [
        ChefFactory(name=f"Chef {i}", cuisine_type=rng.choice(["korean", "thai"]), hourly_rate=Decimal(10 + i))
        for i in range(14)
    ]
    customers = [UserFactory() for _ in range(3)]
    customer_clients = [client_for(c) for c in customers]
    reviewable = [BookingFactory(user=customers[i % 3], chef=chefs[i % 5], finished=True) for i in range(10)]
    readers = [APIClient() for _ in range(4)] + [customer_clients[0]]
    wait_for_replay()

    writes = []
    for i in range(30):
        kind = ["rename", "book", "review", "toggle", "book", "rate"][i % 6]
        writes.append((kind, i))

    def write(kind: str, i: int) -> None:
        chef = chefs[5 + i % 9]
        if kind == "rename":
            response = staff.patch(f"{CHEFS}/{chef.pk}", {"name": f"Chef {chef.pk} v{i}"}, format="json")
        elif kind == "rate":
            response = staff.patch(f"{CHEFS}/{chef.pk}", {"hourly_rate": f"{20 + i}.00"}, format="json")
        elif kind == "toggle":
            chef.refresh_from_db()
            response = staff.patch(f"{CHEFS}/{chef.pk}", {"is_active": not chef.is_active}, format="json")
        elif kind == "review":
            booking = reviewable.pop()
            client = customer_clients[customers.index(booking.user)]
            response = client.post(
                "/api/coocook/reviews", {"booking_id": booking.pk, "rating": 1 + i % 5}, format="json"
            )
        else:  # bookings show in no cached page: they must not cost a single miss
            body = {
                "chef_id": chefs[0].pk,
                "booking_date": str(days_from_today(30 + i)),
                "start_time": "12:00",
                "duration_hours": 2,
                "guests": 2,
            }
            response = customer_clients[i % 3].post("/api/coocook/bookings", body, format="json")
        assert response.status_code in (200, 201), response.content

    counters = ("hit", "miss")
    before = {r: requests_metric("chefs", r) for r in counters}
    sources_before = {s: fill_source_metric("chefs", s) for s in ("replica", "primary")}
    expected = [expected_page(v) for v in VARIANTS]
    reads = 0
    for step in range(1200):
        if step and step % 40 == 0:
            write(*writes.pop(0))
            expected = [expected_page(v) for v in VARIANTS]  # the truth after the last write
        index = step % len(VARIANTS)
        response = rng.choice(readers).get(CHEFS, VARIANTS[index])
        assert response.status_code == 200
        assert seen_page(response) == expected[index], (
            f"stale at step {step} ({VARIANTS[index]}) {response['X-Cache']} {seen_page(response)} {expected[index]}"
        )
        reads += 1
    hits = requests_metric("chefs", "hit") - before["hit"]
    misses = requests_metric("chefs", "miss") - before["miss"]
    replica = fill_source_metric("chefs", "replica") - sources_before["replica"]
    primary = fill_source_metric("chefs", "primary") - sources_before["primary"]
    assert hits + misses == reads
    assert hits / reads > 0.9, (hits, misses)
    assert replica + primary == misses
    assert replica / (replica + primary) >= 0.9, (replica, primary)
