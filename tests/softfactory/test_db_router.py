"""The first router, checked on the server that really ran each query."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connections, router, transaction
from django.test.utils import CaptureQueriesContext

from platform_core.models import User
from softfactory.db_backend.base import ReplicaWriteError
from softfactory.db_router import decisions, routing_scope, use_primary
from tests.softfactory.routing_urls import routed_read_identity
from tests.stack import server_identity, stack_state, wait_for_replay

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def stack_port(name: str) -> int:
    return int(stack_state()["ports"][name])


def test_each_alias_connects_to_its_own_server():
    assert server_identity("default") == (stack_port("primary"), False)
    assert server_identity("replica_1") == (stack_port("replica_1"), True)
    assert server_identity("replica_2") == (stack_port("replica_2"), True)


def test_a_row_written_on_the_primary_is_readable_through_each_replica_after_replay():
    user = User.objects.create_user("reader@example.com", "pw", name="Reader")
    wait_for_replay()
    for alias in ("replica_1", "replica_2"):
        assert User.objects.using(alias).filter(pk=user.pk, email="reader@example.com").exists()


def test_a_write_through_a_replica_alias_fails_loudly():
    with pytest.raises(ReplicaWriteError):
        User.objects.using("replica_1").create(email="nope@example.com", name="Nope")
    with pytest.raises(ReplicaWriteError), transaction.atomic(using="replica_2"):
        list(User.objects.using("replica_2").select_for_update())
    with pytest.raises(ReplicaWriteError), connections["replica_1"].cursor() as cursor:
        cursor.execute("DELETE FROM platform_core_user")
    assert not User.objects.filter(email="nope@example.com").exists()


def test_reads_outside_a_request_go_to_one_replica_and_stay_there():
    wait_for_replay()
    with routing_scope():
        first = routed_read_identity()
        assert first[1] is True
        assert first[0] in {stack_port("replica_1"), stack_port("replica_2")}
        assert {routed_read_identity() for _ in range(10)} == {first}


def test_reads_inside_atomic_go_to_the_primary():
    with routing_scope(), transaction.atomic():
        assert routed_read_identity() == (stack_port("primary"), False)


def test_reads_after_a_write_in_the_same_scope_go_to_the_primary():
    wait_for_replay()
    with routing_scope():
        assert routed_read_identity()[1] is True
        User.objects.create_user("writer@example.com", "pw", name="Writer")
        assert routed_read_identity() == (stack_port("primary"), False)
    with routing_scope():  # a new request or task starts clean
        assert routed_read_identity()[1] is True


def test_use_primary_nests_and_unwinds():
    wait_for_replay()
    with routing_scope():
        with use_primary():
            with use_primary():
                assert routed_read_identity()[1] is False
            assert routed_read_identity()[1] is False
        assert routed_read_identity()[1] is True


@pytest.mark.urls("tests.softfactory.routing_urls")
def test_reads_in_a_get_request_go_to_a_single_replica(client):
    wait_for_replay()
    body = client.get("/where-reads-go").json()
    assert len(body["servers"]) == 1
    port, in_recovery = body["servers"][0]
    assert in_recovery is True
    assert port in {stack_port("replica_1"), stack_port("replica_2")}


@pytest.mark.urls("tests.softfactory.routing_urls")
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_reads_during_an_unsafe_request_go_to_the_primary(client, method):
    body = getattr(client, method)("/where-reads-go").json()
    assert body["servers"] == [[stack_port("primary"), False]]


@pytest.mark.urls("tests.softfactory.routing_urls")
def test_routing_decisions_are_counted_by_alias_and_reason(client):
    wait_for_replay()
    before = decisions.copy()
    client.post("/where-reads-go")
    client.get("/where-reads-go")
    gained = decisions - before
    assert gained[("default", "unsafe_method")] == 5
    replica_reads = {reason: n for (alias, reason), n in gained.items() if alias.startswith("replica_")}
    assert replica_reads == {"replica": 1, "chosen": 4}  # chosen once, then kept for the request


def test_migrations_are_allowed_on_the_primary_only():
    assert router.allow_migrate("default", "platform_core")
    assert not router.allow_migrate("replica_1", "platform_core")
    assert not router.allow_migrate("replica_2", "coocook")


def test_migrate_touches_only_the_primary():
    captures = {alias: CaptureQueriesContext(connections[alias]) for alias in ("replica_1", "replica_2")}
    for capture in captures.values():
        capture.__enter__()
    try:
        call_command("migrate", verbosity=0)
    finally:
        for capture in captures.values():
            capture.__exit__(None, None, None)
    assert {alias: len(c.captured_queries) for alias, c in captures.items()} == {"replica_1": 0, "replica_2": 0}
