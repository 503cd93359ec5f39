"""Probe connections: one per server per process, reused, replaced when they die, never shared over a fork."""

from __future__ import annotations

import multiprocessing

import pytest

from softfactory.replicas import probe_replica, probes
from tests.stack import admin_sql

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def probe_backends(server: str) -> list[int]:
    sql = "SELECT array_agg(pid ORDER BY pid) FROM pg_stat_activity WHERE application_name = 'softfactory-probe'"
    return list(admin_sql(server, sql)[0] or [])


def backend_pid(alias: str) -> int:
    return int(probes.query(alias, "SELECT pg_backend_pid()")[0])


def test_repeated_probes_reuse_one_connection_per_server():
    probes.close_all()
    first = backend_pid("replica_1")
    for _ in range(5):
        assert probe_replica("replica_1", None).state == "streaming"
    assert backend_pid("replica_1") == first
    assert first in probe_backends("replica_1")
    assert probe_backends("replica_1").count(first) == 1


def test_a_probe_connection_killed_while_idle_is_replaced_without_reporting_the_server_down():
    old = backend_pid("replica_2")
    admin_sql("replica_2", f"SELECT pg_terminate_backend({old})")

    assert probe_replica("replica_2", None).state == "streaming"
    assert backend_pid("replica_2") != old


def _child_backend_pid(queue: multiprocessing.Queue) -> None:
    queue.put(backend_pid("replica_1"))


def test_a_forked_child_opens_its_own_probe_connection_and_leaves_the_parents_alone():
    parent = backend_pid("replica_1")
    queue: multiprocessing.Queue = multiprocessing.get_context("fork").Queue()
    child = multiprocessing.get_context("fork").Process(target=_child_backend_pid, args=(queue,))
    child.start()
    child_pid = queue.get(timeout=30)
    child.join(30)

    assert child_pid != parent
    assert backend_pid("replica_1") == parent  # the parent's session survived the child's exit
