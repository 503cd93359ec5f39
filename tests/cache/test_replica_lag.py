"""The replica-lag trap: a fill right after a write must never come from a replica that hasn't
replayed it, or the old rows would be served until the next write. Pauses replay on both
replicas of the shared stack, hence the `stack` marker."""

from __future__ import annotations

import pytest
from django_redis import get_redis_connection

from coocook.models import Chef
from softfactory import cache
from tests.cache.conftest import anonymous, fill_source_metric
from tests.cache.servers import record_fill_servers
from tests.coocook.factories import ChefFactory
from tests.platform_core.factories import StaffFactory, UserFactory
from tests.stack import port_of, replay_paused, wait_for_replay

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True, databases="__all__")]

CHEFS = "/api/coocook/chefs"


def live_entries(namespace: str) -> list[bytes]:
    """The entries readers can still reach: those under the namespace's current generation."""
    redis = get_redis_connection("default")
    generation = redis.hget(cache.meta_key(namespace), "gen").decode()
    keys = redis.keys(f"{cache.key_prefix()}:{namespace}:g{generation}:*")
    return [v for v in redis.mget(keys) if v is not None] if keys else []


def test_with_replay_paused_a_read_after_a_write_comes_from_the_primary_and_caches_no_old_rows(client_for):
    chef = ChefFactory(name="Before the edit")
    staff = client_for(StaffFactory())
    url = f"{CHEFS}/{chef.pk}"
    wait_for_replay()
    servers: list[tuple[int, bool]] = []
    cache.hooks["before_query"].append(record_fill_servers(servers))
    assert anonymous().get(url)["X-Cache"] == "miss"
    assert anonymous().get(CHEFS)["X-Cache"] == "miss"
    assert all(replica for _port, replica in servers)  # caught-up replicas fill
    assert anonymous().get(url)["X-Cache"] == "hit"

    with replay_paused("replica_1", "replica_2"):
        assert staff.patch(url, {"name": "After the edit"}, format="json").status_code == 200
        # The replicas really are behind: they still hold the old row.
        assert Chef.objects.using("replica_1").get(pk=chef.pk).name == "Before the edit"
        assert Chef.objects.using("replica_2").get(pk=chef.pk).name == "Before the edit"
        servers.clear()
        primary_fills = fill_source_metric("chefs", "primary")
        for reader in (anonymous(), client_for(UserFactory()), anonymous()):
            assert reader.get(url).json()["name"] == "After the edit"
            assert [item["name"] for item in reader.get(CHEFS).json()["results"]] == ["After the edit"]
        assert servers == [(port_of("primary"), False)] * 2  # one fill per key, then hits
        assert fill_source_metric("chefs", "primary") == primary_fills + 2
        entries = live_entries("chefs")
        assert len(entries) == 2
        assert not any(b"Before the edit" in value for value in entries)

    wait_for_replay()
    servers.clear()
    assert anonymous().get(CHEFS, {"per_page": "5"})["X-Cache"] == "miss"  # a new key: a replica again
    assert staff.patch(url, {"name": "Edited again"}, format="json").status_code == 200
    assert anonymous().get(url).json()["name"] == "Edited again"
    assert len(servers) == 2
    assert all(replica for _port, replica in servers), servers
