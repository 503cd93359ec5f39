"""/healthz, /readyz and /metrics against the real stack, including stopped servers."""

from __future__ import annotations

import time

import pytest

from tests.stack import server_stopped


def assert_replicas_return_to_streaming(client, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while (states := {r["state"] for r in client.get("/readyz").json()["replicas"]}) != {"streaming"}:
        assert time.monotonic() < deadline, f"replicas still {states} after {timeout}s"
        time.sleep(0.2)


def test_healthz_answers_200(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_the_primary_both_replicas_streaming_and_redis_up(client):
    # Earlier tests write a lot of WAL on this 2-core machine: allow the replicas a few seconds to
    # catch up from a moment of replay lag (over 1 s reads as "lagging"); lasting lag still fails.
    deadline = time.monotonic() + 15
    while True:
        response = client.get("/readyz")
        body = response.json()
        if all(r["state"] == "streaming" for r in body["replicas"]) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert response.status_code == 200
    assert body["primary"] == {"state": "up"}
    assert [(r["alias"], r["state"]) for r in body["replicas"]] == [
        ("replica_1", "streaming"),
        ("replica_2", "streaming"),
    ]
    for replica in body["replicas"]:
        assert replica["lag_seconds"] >= 0
        assert replica["lag_bytes"] >= 0
    assert body["cache"] == {"state": "up"}
    assert body["scheduler"] == {"last_dispatch_age_seconds": None}


@pytest.mark.stack
def test_readyz_reports_a_stopped_replica_down_and_still_answers_200(client):
    with server_stopped("replica_2", mode="immediate"):
        response = client.get("/readyz")
        assert response.status_code == 200
        states = {r["alias"]: r["state"] for r in response.json()["replicas"]}
        assert states == {"replica_1": "streaming", "replica_2": "down"}
    assert_replicas_return_to_streaming(client)


@pytest.mark.stack
def test_readyz_answers_503_while_the_primary_is_down(client):
    with server_stopped("primary"):
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response["Retry-After"]
        assert response.json()["primary"] == {"state": "down"}
    assert client.get("/readyz").status_code == 200
    assert_replicas_return_to_streaming(client)


@pytest.mark.stack
def test_readyz_reports_redis_down_while_it_is_stopped(client):
    with server_stopped("redis"):
        response = client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["cache"] == {"state": "down"}
    assert client.get("/readyz").json()["cache"] == {"state": "up"}


def test_metrics_are_served_to_loopback_and_refused_elsewhere(client):
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert b"django_http_requests" in client.get("/metrics", REMOTE_ADDR="127.0.0.1").content
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
