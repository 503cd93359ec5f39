"""Redis refusing, hanging, answering errors or stopped: the API keeps answering, fresh, from the
database; failed bumps are detected and retried; caching resumes without a restart."""

from __future__ import annotations

import time

import pytest
from celery.signals import task_prerun
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from coocook.models import Chef
from softfactory import cache
from tests.cache.conftest import anonymous, invalidations_metric, requests_metric
from tests.cache.servers import black_hole, closed_port_url, record_fill_servers, with_cache_location
from tests.coocook.factories import ChefFactory
from tests.platform_core.factories import PASSWORD, StaffFactory, UserFactory
from tests.stack import port_of, server_stopped

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

CHEFS = "/api/coocook/chefs"


def names(response) -> list[str]:
    return [item["name"] for item in response.json()["results"]]


def wait_for_breaker() -> None:
    deadline = time.monotonic() + 5
    while cache.breaker.is_open and time.monotonic() < cache.breaker.open_until + 0.01:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_with_redis_refusing_connections_reads_are_fresh_from_the_primary_and_a_lost_bump_is_retried(settings):
    settings.RESPONSE_CACHE_BREAKER_COOLDOWN_SECONDS = 0.1
    real_location = settings.CACHES["default"]["LOCATION"]
    chef = ChefFactory(name="Before")
    assert names(anonymous().get(CHEFS)) == ["Before"]  # cached in the real Redis
    servers: list[tuple[int, bool]] = []
    cache.hooks["before_query"].append(record_fill_servers(servers))

    with_cache_location(settings, "default", closed_port_url())
    failed = invalidations_metric("chefs", "failed")
    errors = requests_metric("chefs", "error")
    Chef.objects.filter(pk=chef.pk).update(name="After")  # its bump can't reach Redis
    assert invalidations_metric("chefs", "failed") == failed + 1
    assert "chefs" in cache.pending_bumps()
    for _ in range(4):
        response = anonymous().get(CHEFS)
        assert response.status_code == 200
        assert names(response) == ["After"]
        assert response["X-Cache"] == "bypass"  # this process knows its bump is missing
    detail = anonymous().get(f"/api/coocook/chefs/{chef.pk}")
    assert detail.json()["name"] == "After"
    assert set(servers) == {(port_of("primary"), False)}
    assert anonymous().get("/api/review/campaigns")["X-Cache"] in ("error",)
    assert requests_metric("campaigns", "error") >= 1
    assert cache.breaker.is_open
    assert requests_metric("chefs", "error") == errors  # chefs were not even looked up

    # Redis is back: the next request retries the bump; the old entry is never served again.
    with_cache_location(settings, "default", real_location)
    wait_for_breaker()
    retried = invalidations_metric("chefs", "retried")
    first = anonymous().get(CHEFS)
    assert names(first) == ["After"]
    assert first["X-Cache"] == "miss"
    assert invalidations_metric("chefs", "retried") == retried + 1
    assert cache.pending_bumps() == {}
    assert anonymous().get(CHEFS)["X-Cache"] == "hit"


def test_a_black_holed_redis_costs_nothing_after_the_first_failures(settings):
    settings.RESPONSE_CACHE_BREAKER_COOLDOWN_SECONDS = 30
    ChefFactory.create_batch(3)
    expected = anonymous().get(CHEFS).content
    with black_hole() as location:
        with_cache_location(settings, "default", location)
        client = APIClient()
        client.get("/healthz")
        timings = []
        for _ in range(13):
            started = time.monotonic()
            response = client.get(CHEFS)
            timings.append(time.monotonic() - started)
            assert response.status_code == 200
            assert response.content == expected
            assert response["X-Cache"] == "error"
    slow, fast = timings[:3], timings[3:]
    assert all(t >= 0.2 for t in slow), timings  # each waited out the socket timeout
    assert max(fast) < 0.15, timings  # the breaker is open: Redis isn't tried at all
    assert cache.breaker.is_open


def test_a_bump_redis_answers_with_an_error_is_detected_and_retried(settings):
    """An error reply (read-only replica after a failover, out of memory, wrong type) is no silent success."""
    settings.RESPONSE_CACHE_BREAKER_COOLDOWN_SECONDS = 0.1
    chef = ChefFactory(name="Before")
    anonymous().get(CHEFS)
    redis = get_redis_connection("default")
    meta = cache.meta_key("chefs")
    saved = redis.hgetall(meta)
    redis.delete(meta)
    redis.set(meta, "not a hash")  # every script on it now fails with WRONGTYPE
    failed = invalidations_metric("chefs", "failed")
    Chef.objects.filter(pk=chef.pk).update(name="After")
    assert invalidations_metric("chefs", "failed") == failed + 1
    assert names(anonymous().get(CHEFS)) == ["After"]
    redis.delete(meta)
    redis.hset(meta, mapping=saved)  # the old generation is back, its entry too
    wait_for_breaker()
    response = anonymous().get(CHEFS)  # drains the retry first
    assert names(response) == ["After"]
    assert response["X-Cache"] == "miss"
    assert int(redis.hget(meta, "gen")) == int(saved[b"gen"]) + 1
    assert cache.pending_bumps() == {}


def test_a_worker_retries_its_failed_bumps_before_its_next_task(settings):
    chef = ChefFactory(name="Before")
    real_location = settings.CACHES["default"]["LOCATION"]
    with_cache_location(settings, "default", closed_port_url())
    Chef.objects.filter(pk=chef.pk).update(name="After")  # as a periodic job would
    assert "chefs" in cache.pending_bumps()
    with_cache_location(settings, "default", real_location)
    task_prerun.send(sender=None, task_id="next-task", task=None, args=(), kwargs={})
    assert cache.pending_bumps() == {}
    assert names(anonymous().get(CHEFS)) == ["After"]


# --- the real Redis server stopped (breaks the shared stack: run alone, at the end) -------


def login(client: APIClient, user) -> str:
    response = client.post("/api/auth/login", {"email": user.email, "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["token"]


def me(client: APIClient, token: str | None = None) -> int:
    headers = {"HTTP_AUTHORIZATION": f"Token {token}"} if token else {}
    return client.get("/api/auth/me", **headers).status_code


@pytest.mark.stack
def test_with_redis_stopped_the_api_answers_from_the_database_and_logins_and_sessions_keep_working(
    settings, client_for
):
    settings.RESPONSE_CACHE_BREAKER_COOLDOWN_SECONDS = 0.2
    chef = ChefFactory(name="Before")
    staff = client_for(StaffFactory())
    user = UserFactory()
    browser = APIClient()
    token = login(browser, user)
    assert names(anonymous().get(CHEFS)) == ["Before"]
    with server_stopped("redis"):
        assert names(anonymous().get(CHEFS)) == ["Before"]
        assert staff.patch(f"{CHEFS}/{chef.pk}", {"name": "During"}, format="json").status_code == 200
        for _ in range(3):
            response = anonymous().get(CHEFS)
            assert response.status_code == 200
            assert names(response) == ["During"]
        assert me(browser) == 200  # the session, from the database
        assert me(APIClient(), token) == 200
        newcomer = APIClient()
        new_token = login(newcomer, UserFactory())
        assert me(newcomer) == 200
        assert me(APIClient(), new_token) == 200
        assert newcomer.post("/api/auth/logout").status_code == 204
        assert "chefs" in cache.pending_bumps()
    # Redis is back (AOF kept the old entry and generation): no restart, and nothing stale.
    wait_for_breaker()
    deadline = time.monotonic() + 10
    while (response := anonymous().get(CHEFS))["X-Cache"] != "hit":
        assert names(response) == ["During"]
        assert time.monotonic() < deadline, "caching did not resume"
        time.sleep(0.1)
    assert names(response) == ["During"]
    assert cache.pending_bumps() == {}
    assert me(browser) == 200


@pytest.mark.stack
def test_a_redis_restart_logs_nobody_out():
    user = UserFactory()
    browser = APIClient()
    token = login(browser, user)
    assert (me(browser), me(APIClient(), token)) == (200, 200)
    with server_stopped("redis", mode="immediate"):
        pass
    assert me(browser) == 200
    assert me(APIClient(), token) == 200
    get_redis_connection("sessions").flushdb()  # even a Redis that lost everything
    get_redis_connection("default").flushdb()
    assert me(browser) == 200
    assert me(APIClient(), token) == 200
