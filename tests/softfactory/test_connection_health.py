"""The per-request connection health check: no round trip, yet a session the server ended is replaced."""

from __future__ import annotations

import time

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from tests.stack import admin_sql

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def backend_pid(alias: str) -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def start_of_request(alias: str) -> None:
    # What Django does for a persistent connection when a request starts (CONN_HEALTH_CHECKS).
    connections[alias].health_check_done = False
    connections[alias].close_if_health_check_failed()


@pytest.mark.parametrize(("alias", "server"), [("default", "primary"), ("replica_1", "replica_1")])
def test_a_live_idle_connection_passes_the_health_check_without_a_query(alias, server):
    pid = backend_pid(alias)
    with CaptureQueriesContext(connections[alias]) as queries:
        start_of_request(alias)
    assert connections[alias].connection is not None
    assert len(queries) == 0
    assert backend_pid(alias) == pid


@pytest.mark.parametrize(("alias", "server"), [("default", "primary"), ("replica_1", "replica_1")])
def test_a_connection_whose_session_the_server_ended_is_replaced_before_the_request_uses_it(alias, server):
    old = backend_pid(alias)
    admin_sql(server, f"SELECT pg_terminate_backend({old})")
    for _ in range(250):  # the goodbye reaches the socket within milliseconds
        if not connections[alias].is_usable():
            break
        time.sleep(0.02)
    assert not connections[alias].is_usable()

    start_of_request(alias)

    assert connections[alias].connection is None  # closed: the next query connects again
    assert backend_pid(alias) != old
