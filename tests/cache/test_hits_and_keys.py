"""What is cached, under which key, for whom, and what a hit costs (real Redis, real replicas)."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from softfactory import cache
from tests.cache.conftest import anonymous, requests_metric
from tests.coocook.factories import ChefFactory, ReviewFactory
from tests.platform_core.factories import UserFactory
from tests.review.factories import CampaignFactory
from tests.stack import wait_for_replay

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

CHEFS = "/api/coocook/chefs"
CAMPAIGNS = "/api/review/campaigns"


def redis_keys(pattern: str = "*") -> list[str]:
    return sorted(k.decode() for k in get_redis_connection("default").keys(f"{cache.key_prefix()}:{pattern}"))


def entry_keys() -> list[str]:
    return [k for k in redis_keys() if ":gen:" not in k and ":lock:" not in k and ":g" in k]


class CountingRedis:
    """Counts every command any Redis connection of this process sends while installed (the
    pooled client's, and the response cache's direct lookup connection)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.commands: list[str] = []
        connection_class = get_redis_connection("default").connection_pool.connection_class
        original = connection_class.pack_command

        def counted(connection, *args):
            self.commands.append(str(args[0]))
            return original(connection, *args)

        monkeypatch.setattr(connection_class, "pack_command", counted)


def test_a_hit_costs_one_redis_round_trip_and_no_database_query(monkeypatch):
    ChefFactory.create_batch(3)
    wait_for_replay()
    client = anonymous()
    miss = client.get(CHEFS, {"per_page": "2"})
    assert miss.status_code == 200
    assert miss["X-Cache"] == "miss"
    counting = CountingRedis(monkeypatch)
    captured = [CaptureQueriesContext(connections[alias]) for alias in connections]
    for context in captured:
        context.__enter__()
    try:
        hit = client.get(CHEFS, {"per_page": "2"})
    finally:
        for context in captured:
            context.__exit__(None, None, None)
    assert hit["X-Cache"] == "hit"
    assert hit.content == miss.content
    assert counting.commands == ["EVALSHA"]  # generation, position and entry in one script call
    assert [q["sql"] for c in captured for q in c.captured_queries] == []


def test_keys_have_the_documented_shape():
    chef = ChefFactory()
    ReviewFactory(chef=chef, booking__chef=chef)
    client = anonymous()
    assert client.get(CHEFS).status_code == 200
    assert client.get(f"{CHEFS}/{chef.pk}").status_code == 200
    assert client.get(f"{CHEFS}/{chef.pk}/reviews").status_code == 200
    keys = entry_keys()
    assert len(keys) == 3
    assert any(re.fullmatch(r"sf:chefs:g\d+:chefs\.list:[0-9a-f]{32}", k) for k in keys), keys
    assert any(re.fullmatch(r"sf:chefs:g\d+:chefs\.detail:[0-9a-f]{32}", k) for k in keys), keys
    assert any(re.fullmatch(r"sf:reviews:g\d+\.chefs:g\d+:chefs\.reviews:[0-9a-f]{32}", k) for k in keys), keys
    meta = get_redis_connection("default").hgetall("sf:gen:chefs")
    assert set(meta) == {b"gen", b"lsn"}
    assert re.fullmatch(rb"[0-9A-F]{16}", meta[b"lsn"])
    for key in keys:  # every entry expires: the TTL is the hard bound after a lost invalidation
        assert 0 < get_redis_connection("default").pttl(key) <= cache.entry_ttl() * 1000


def test_unknown_parameters_and_equivalent_spellings_share_one_entry():
    ChefFactory.create_batch(2, cuisine_type="korean", rating=Decimal("4.50"))
    client = anonymous()
    first = client.get(CHEFS, {"cuisine": "korean", "min_rating": "4", "per_page": "1"})
    assert first["X-Cache"] == "miss"
    for params in (
        {"cuisine": "korean", "min_rating": "4", "per_page": "1", "utm_source": "mail", "_": "1712"},
        {"cuisine": "  korean ", "min_rating": "4.00", "per_page": "1", "page": "1"},
        {"cuisine": "korean", "min_rating": "4.0", "per_page": "1", "ordering": "-rating"},
    ):
        again = client.get(CHEFS, params)
        assert again["X-Cache"] == "hit", params
        assert again.content == first.content
    assert len(entry_keys()) == 1
    # Links come from the normalised parameters: nobody's stray parameters leak into a shared page.
    assert first.json()["next"] == "http://testserver/api/coocook/chefs?cuisine=korean&min_rating=4&page=2&per_page=1"


def test_scheme_host_and_accept_are_part_of_the_key():
    ChefFactory.create_batch(2)
    plain = anonymous().get(CHEFS, {"per_page": "1"})
    other_host = anonymous().get(CHEFS, {"per_page": "1"}, HTTP_HOST="localhost")
    secure = anonymous().get(CHEFS, {"per_page": "1"}, secure=True)
    indented = anonymous().get(CHEFS, {"per_page": "1"}, HTTP_ACCEPT="application/json; indent=2")
    assert [r["X-Cache"] for r in (plain, other_host, secure, indented)] == ["miss"] * 4
    assert plain.json()["next"].startswith("http://testserver/")
    assert other_host.json()["next"].startswith("http://localhost/")
    assert secure.json()["next"].startswith("https://testserver/")
    assert b"\n  " in indented.content
    assert anonymous().get(CHEFS, {"per_page": "1"}, HTTP_HOST="localhost").json() == other_host.json()


def test_signed_in_callers_share_the_public_entries(client_for):
    ChefFactory.create_batch(2)
    miss = anonymous().get(CHEFS)
    hit = client_for(UserFactory()).get(CHEFS)
    assert (miss["X-Cache"], hit["X-Cache"]) == ("miss", "hit")
    assert hit.content == miss.content


def test_an_inactive_chef_is_never_stored_under_the_shared_key(client_for, staff_user):
    owner = UserFactory()
    hidden = ChefFactory(is_active=False, owner=owner)
    url = f"{CHEFS}/{hidden.pk}"
    assert client_for(staff_user).get(url).status_code == 200
    assert client_for(owner).get(url).status_code == 200
    assert client_for(owner).get(f"{url}/reviews").status_code == 200
    assert anonymous().get(url).status_code == 404
    assert anonymous().get(f"{url}/reviews").status_code == 404
    assert client_for(UserFactory()).get(url).status_code == 404
    assert entry_keys() == []


def test_an_active_chef_read_by_staff_is_the_public_entry(client_for, staff_user):
    chef = ChefFactory()
    by_staff = client_for(staff_user).get(f"{CHEFS}/{chef.pk}")
    by_anyone = anonymous().get(f"{CHEFS}/{chef.pk}")
    assert (by_staff["X-Cache"], by_anyone["X-Cache"]) == ("miss", "hit")
    assert by_anyone.content == by_staff.content


def test_draft_campaigns_bypass_the_cache(client_for, staff_user):
    draft = CampaignFactory(status="draft")
    CampaignFactory()
    staff = client_for(staff_user)
    wait_for_replay()  # the bypass is ordinary routing: a replica, and these rows came from no request
    listed = staff.get(CAMPAIGNS, {"status": "draft"})
    assert listed.status_code == 200
    assert listed["X-Cache"] == "bypass"
    assert [c["id"] for c in listed.json()["results"]] == [draft.pk]
    assert staff.get(f"{CAMPAIGNS}/{draft.pk}").status_code == 200
    assert anonymous().get(f"{CAMPAIGNS}/{draft.pk}").status_code == 404
    assert anonymous().get(CAMPAIGNS, {"status": "draft"}).status_code == 400
    assert entry_keys() == []
    assert anonymous().get(CAMPAIGNS)["X-Cache"] == "miss"
    assert staff.get(CAMPAIGNS)["X-Cache"] == "hit"


def test_cached_and_uncached_answers_are_byte_identical(settings):
    chef = ChefFactory()
    ReviewFactory(chef=chef, booking__chef=chef)
    CampaignFactory()
    urls = [CHEFS, f"{CHEFS}/{chef.pk}", f"{CHEFS}/{chef.pk}/reviews", CAMPAIGNS]
    cached = [anonymous().get(url) for url in urls]
    hits = [anonymous().get(url) for url in urls]
    settings.RESPONSE_CACHE_ENABLED = False
    wait_for_replay()  # the bypass is ordinary routing: a replica, and these rows came from no request
    direct = [anonymous().get(url) for url in urls]
    assert [r["X-Cache"] for r in hits] == ["hit"] * 4
    assert [r["X-Cache"] for r in direct] == ["bypass"] * 4
    assert [r.content for r in cached] == [r.content for r in hits] == [r.content for r in direct]
    assert [r["Content-Type"] for r in hits] == ["application/json"] * 4


def test_reads_inside_a_transaction_neither_use_nor_fill_the_cache():
    ChefFactory()
    client = APIClient()
    before = requests_metric("chefs", "bypass")
    with transaction.atomic():
        ChefFactory(name="Uncommitted")
        inside = client.get(CHEFS)
        assert inside["X-Cache"] == "bypass"
        assert "Uncommitted" in inside.content.decode()
        transaction.set_rollback(True)
    assert entry_keys() == []
    assert requests_metric("chefs", "bypass") == before + 1
    assert "Uncommitted" not in client.get(CHEFS).content.decode()


def test_hits_and_misses_are_counted_per_namespace():
    chef = ChefFactory()
    before = {r: requests_metric("chefs", r) for r in ("hit", "miss")}
    anonymous().get(f"{CHEFS}/{chef.pk}")
    anonymous().get(f"{CHEFS}/{chef.pk}")
    anonymous().get(f"{CHEFS}/{chef.pk}")
    assert requests_metric("chefs", "miss") == before["miss"] + 1
    assert requests_metric("chefs", "hit") == before["hit"] + 2


def _hit_after(break_it) -> str:
    ChefFactory.create_batch(2)
    wait_for_replay()
    client = anonymous()
    assert client.get(CHEFS)["X-Cache"] == "miss"
    assert client.get(CHEFS)["X-Cache"] == "hit"  # the lookup connection is open now
    break_it(get_redis_connection("default"))
    response = client.get(CHEFS)
    assert response.status_code == 200
    assert not cache.breaker.is_open
    return response["X-Cache"]


def test_a_lookup_connection_redis_dropped_is_replaced_at_once():
    # Every client connection dropped, as a Redis restart would: the next lookup reconnects.
    assert _hit_after(lambda redis: redis.client_kill_filter(_type="normal", skipme=False)) == "hit"


def test_a_lookup_script_redis_forgot_is_loaded_again():
    assert _hit_after(lambda redis: redis.script_flush()) == "hit"


def test_each_thread_looks_up_on_its_own_connection():
    import threading

    ChefFactory.create_batch(2)
    wait_for_replay()
    assert anonymous().get(CHEFS)["X-Cache"] == "miss"
    outcomes, connections_seen = [], set()

    def look() -> None:
        outcomes.append(anonymous().get(CHEFS)["X-Cache"])
        connections_seen.add(id(cache.direct._local.connection))

    threads = [threading.Thread(target=look) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == ["hit"] * 3
    assert len(connections_seen) == 3
