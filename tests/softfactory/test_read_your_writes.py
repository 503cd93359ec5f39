"""Read-your-writes, lag-aware routing and replica failover, against the real replicas.

Each routing assertion checks the server that answered (`inet_server_port()`,
`pg_is_in_recovery()`), not only alias names.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from softfactory import db_router
from softfactory.replicas import OPEN, REPLAY_POSITION_MAX_AGE, monitor, primary_insert_lsn, probe_replica
from tests.stack import admin_sql, port_of, replay_paused, run_stack, server_stopped, wait_for_replay

pytestmark = [
    pytest.mark.stack,
    pytest.mark.django_db(transaction=True, databases="__all__"),
    pytest.mark.urls("tests.softfactory.ryw_urls"),
]


@pytest.fixture(autouse=True)
def fresh_monitor() -> Iterator[None]:
    monitor.views.clear()
    yield
    monitor.views.clear()


def server(body: dict) -> tuple[int | None, bool | None]:
    return body["server_port"], body["in_recovery"]


def write(client: APIClient, name: str) -> int:
    response = client.post("/rw/items", {"name": name}, format="json")
    assert response.status_code == 201, response.content
    return int(response.json()["id"])


def replica_decisions(before: db_router.Counter) -> dict[str, int]:
    gained = db_router.decisions - before
    out: dict[str, int] = {}
    for (alias, _reason), n in gained.items():
        out[alias] = out.get(alias, 0) + n
    return out


def test_a_writer_never_reads_stale_data_from_a_replica_that_looks_healthy(settings, user, other_user, client_for):
    wait_for_replay()
    writer, other = client_for(user), client_for(other_user)
    monitor.usable()  # both replicas probed healthy now...
    settings.REPLICA_CHECK_INTERVAL_SECONDS = 3600  # ...and not probed again: only positions protect the writer
    with replay_paused("replica_1"):
        item = write(writer, "ryw-1")
        seen = set()
        for _ in range(100):
            body = writer.get(f"/rw/items/{item}").json()
            assert body["found"], f"stale read from {server(body)}"
            seen.add(server(body))
        assert (port_of("replica_1"), True) not in seen
        # Clients without a recorded write keep reading replicas.
        for _ in range(10):
            assert other.get(f"/rw/items/{item}").json()["in_recovery"] is True
        with replay_paused("replica_2"):
            second = write(writer, "ryw-2")
            for _ in range(20):
                body = writer.get(f"/rw/items/{second}").json()
                assert body["found"]
                assert server(body) == (port_of("primary"), False)
    wait_for_replay()
    time.sleep(REPLAY_POSITION_MAX_AGE * 1.5)  # the router trusts a cached replay position for 100 ms
    before = db_router.decisions.copy()
    body = writer.get(f"/rw/items/{second}").json()
    print("after resume:", body, db_router.decisions - before)
    assert body["found"] and body["in_recovery"] is True  # a time-based pin would still say primary
    assert sum(n for a, n in replica_decisions(before).items() if a.startswith("replica_")) >= 1


def test_an_anonymous_writer_reads_its_write_through_the_signed_cookie(settings):
    wait_for_replay()
    browser = APIClient()
    monitor.usable()
    settings.REPLICA_CHECK_INTERVAL_SECONDS = 3600  # replicas keep looking healthy: only the cookie protects
    with replay_paused("replica_1", "replica_2"):
        item = write(browser, "anon-1")
        assert browser.cookies.get("sf_rr") is not None
        for _ in range(20):
            body = browser.get(f"/rw/items/{item}").json()
            assert body["found"]
            assert server(body) == (port_of("primary"), False)
        assert APIClient().get(f"/rw/items/{item}").json()["in_recovery"] is True  # others: replicas


def test_a_tampered_position_cookie_is_ignored():
    wait_for_replay()
    client = APIClient()
    client.cookies["sf_rr"] = "999999999999"
    assert client.get("/rw/items/1").json()["in_recovery"] is True


def test_once_every_replica_caught_up_the_position_is_dropped(user, client_for):
    from softfactory.positions import load_for_user

    writer = client_for(user)
    item = write(writer, "drop-1")
    assert load_for_user(user.pk) is not None
    wait_for_replay()
    monitor.views.clear()
    writer.get(f"/rw/items/{item}")
    assert load_for_user(user.pk) is None


def test_without_the_position_store_a_writer_reads_from_the_primary(user, client_for):
    wait_for_replay()
    writer = client_for(user)
    item = write(writer, "redis-down-1")
    with server_stopped("redis"):
        before = db_router.decisions.copy()
        body = writer.get(f"/rw/items/{item}").json()
        assert body["found"]
        assert server(body) == (port_of("primary"), False)
        assert (db_router.decisions - before)[("default", "position_unknown")] == 1


def test_a_replica_with_constant_lag_is_avoided_while_over_the_limit(user):
    wait_for_replay()
    admin_sql("replica_2", "ALTER SYSTEM SET recovery_min_apply_delay = '3s'")
    admin_sql("replica_2", "SELECT pg_reload_conf()")
    stop = threading.Event()

    def keep_writing() -> None:
        from django.contrib.auth.models import Group
        from django.db import connection

        i = 0
        while not stop.is_set():
            Group.objects.create(name=f"lag-{i}")
            i += 1
            time.sleep(0.05)
        connection.close()

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        deadline = time.monotonic() + 20
        while True:
            health = probe_replica("replica_2", primary_insert_lsn())
            if health.state == "lagging":
                break
            assert time.monotonic() < deadline, f"replica_2 never looked lagging: {health}"
            time.sleep(0.2)
        assert health.lag_seconds is not None and health.lag_seconds > 1.0
        monitor.views.clear()
        before = db_router.decisions.copy()
        for _ in range(10):
            assert APIClient().get("/rw/items/1").json()["server_port"] in (port_of("replica_1"), None)
        assert "replica_2" not in replica_decisions(before)
    finally:
        stop.set()
        writer.join()
        admin_sql("replica_2", "ALTER SYSTEM RESET recovery_min_apply_delay")
        admin_sql("replica_2", "SELECT pg_reload_conf()")
    wait_for_replay(timeout=30)


def steady_reads(item: int, seconds: float, clients: int, mark: dict) -> list[tuple[float, int]]:
    """Several clients GET in a loop; returns (start time, status) of every request."""
    results: list[tuple[float, int]] = []
    errors: list[str] = mark.setdefault("errors", [])
    lock = threading.Lock()

    def run() -> None:
        from django.db import close_old_connections, connections

        client = APIClient()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.monotonic()
            # What Django's request_started signal does in a real server (the test client skips it):
            # persistent connections get their health check before reuse.
            close_old_connections()
            try:
                response = client.get(f"/rw/items/{item}")
                status = response.status_code
                if status != 200:
                    errors.append(f"{status} {response.content[:200]!r}")
            except Exception as exc:
                status = 599
                errors.append(repr(exc)[:300])
            with lock:
                results.append((started, status))
            time.sleep(0.01)
        for conn in connections.all():
            conn.close()

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads:
        t.start()
    mark["started"] = True
    for t in threads:
        t.join()
    return results


def test_a_replica_stopped_mid_run_costs_at_most_the_requests_in_flight(capsys):
    wait_for_replay()
    item = write(APIClient(), "stop-1")
    wait_for_replay()
    clients, mark, stop_at = 4, {}, {}

    def stopper() -> None:
        time.sleep(1.0)
        stop_at["begun"] = time.monotonic()
        run_stack("ctl", "replica_1", "stop", "--mode", "immediate")
        stop_at["t"] = time.monotonic()  # the server is gone: requests from now on must all succeed

    killer = threading.Thread(target=stopper)
    killer.start()
    try:
        results = steady_reads(item, 4.0, clients, mark)
        killer.join()
        after = [s for t, s in results if t > stop_at["t"]]
        at_the_instant = [s for t, s in results if stop_at["begun"] <= t <= stop_at["t"] and s != 200]
        with capsys.disabled():
            print(
                f"\n[replica stop] {len(results)} requests, {len(after)} started after the stop, "
                f"{sum(s != 200 for s in after)} of those failed; {len(at_the_instant)} failed at the instant "
                f"(at most {clients} in flight)"
            )
            for error in mark.get("errors", [])[:10]:
                print("  failure:", error)
        assert after
        assert [s for s in after if s != 200] == []
        assert len(at_the_instant) <= clients
        assert monitor.view("replica_1").breaker == OPEN or monitor.view("replica_1").health.state == "down"
    finally:
        run_stack("start")
    deadline = time.monotonic() + 30
    while True:  # after the restart the breaker closes and replica_1 serves again
        before = db_router.decisions.copy()
        APIClient().get(f"/rw/items/{item}")
        if "replica_1" in replica_decisions(before):
            break
        assert time.monotonic() < deadline, "replica_1 never served again"
        time.sleep(0.2)


def test_a_hung_replica_is_dropped_within_ten_seconds_and_serves_again_after_sigcont():
    wait_for_replay()
    item = write(APIClient(), "hang-1")
    wait_for_replay()
    pids = [int(p) for p in run_stack("pids", "replica_2").stdout.split()]
    from django.db import connections

    for conn in connections.all():
        conn.close()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # a backend may end between listing and signal
            os.kill(pid, signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        statuses = []
        last_choice_of_replica_2 = None
        while time.monotonic() - stopped_at < 12:
            outcome: dict = {}

            def one_request(outcome: dict = outcome) -> None:
                before = db_router.decisions.copy()
                outcome["status"] = APIClient().get(f"/rw/items/{item}").status_code
                outcome["chose_2"] = "replica_2" in replica_decisions(before)
                for conn in connections.all():
                    conn.close()

            t = threading.Thread(target=one_request)
            t.start()
            t.join(timeout=30)
            statuses.append(outcome.get("status"))
            if outcome.get("chose_2"):
                last_choice_of_replica_2 = time.monotonic() - stopped_at
            time.sleep(0.2)
        assert all(s == 200 for s in statuses), statuses
        assert last_choice_of_replica_2 is None or last_choice_of_replica_2 < 10
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    deadline = time.monotonic() + 40
    while True:
        before = db_router.decisions.copy()
        APIClient().get(f"/rw/items/{item}")
        if "replica_2" in replica_decisions(before):
            break
        assert time.monotonic() < deadline, "replica_2 never served again after SIGCONT"
        time.sleep(0.3)


def test_a_promoted_replica_is_excluded(client):
    wait_for_replay()
    try:
        run_stack("ctl", "replica_2", "promote")
        deadline = time.monotonic() + 10
        while probe_replica("replica_2", None).state != "promoted":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        monitor.views.clear()
        assert monitor.usable() == ["replica_1"]
        before = db_router.decisions.copy()
        for _ in range(10):
            assert APIClient().get("/rw/items/1").json()["server_port"] in (port_of("replica_1"), None)
        assert "replica_2" not in replica_decisions(before)
        states = {r["alias"]: r["state"] for r in client.get("/readyz").json()["replicas"]}
        assert states["replica_2"] == "promoted"
    finally:
        from django.db import connections

        connections["replica_2"].close()
        run_stack("rebuild", "replica_2", timeout=600)
    wait_for_replay(timeout=30)


def test_routing_state_is_reset_after_an_exception_in_a_view(client):
    with pytest.raises(RuntimeError):
        client.get("/rw/boom")
    assert client.get("/rw/state").json() == {"wrote": False, "replica": None, "primary_depth": 0}


def test_two_requests_on_one_thread_share_no_routing_state():
    client = APIClient()
    write(client, "share-1")
    assert client.get("/rw/state").json() == {"wrote": False, "replica": None, "primary_depth": 0}
