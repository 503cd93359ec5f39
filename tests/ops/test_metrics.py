"""/metrics: counters added up across gunicorn workers, and the database gauges asked at scrape time."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import pytest
import requests
from django.db import connections

from softfactory import health
from tests.ops.live import free_port, live_gunicorn
from tests.ops.scrape import parse, total
from tests.stack import port_of

REQUESTS = 60
LIST_URL = "/api/review/campaigns"
COUNTER = "django_http_requests_total_by_view_transport_method_total"


def api_requests_in(samples) -> float:
    # Every request except the start-up health checks and the scrapes themselves.
    return sum(v for labels, v in samples[COUNTER] if labels["view"] not in ("healthz", "metrics"))


def fire(server, count: int) -> list[int]:
    with ThreadPoolExecutor(max_workers=6) as pool:
        return list(pool.map(lambda _: requests.get(server.url + LIST_URL, timeout=10).status_code, range(count)))


def pids_with_counter_files(server) -> set[int]:
    return {
        int(name.rsplit("_", 1)[1].split(".")[0])
        for name in os.listdir(server.multiproc_dir)
        if name.startswith("counter_")
    }


def scrape(server):
    response = requests.get(server.url + "/metrics", timeout=10)
    assert response.status_code == 200
    return parse(response.text)


@pytest.mark.django_db(transaction=True)
def test_requests_spread_over_several_gunicorn_workers_add_up_in_one_scrape(tmp_path):
    with live_gunicorn(tmp_path, workers=3) as server:
        assert fire(server, REQUESTS) == [200] * REQUESTS
        workers = set(server.worker_pids())
        assert len(pids_with_counter_files(server) & workers) >= 2, "the requests did not reach several workers"
        for _ in range(3):  # whichever worker answers the scrape, it reports every worker's counts
            samples = scrape(server)
            assert api_requests_in(samples) == REQUESTS
            latency_count = "django_http_requests_latency_seconds_by_view_method_count"
            assert (
                sum(v for labels, v in samples[latency_count] if labels["view"] not in ("healthz", "metrics"))
                == REQUESTS
            )
            assert total(samples, "django_http_responses_total_by_status_total", status="200") >= REQUESTS


@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_keeps_its_counts_and_loses_its_live_gauges(tmp_path):
    with live_gunicorn(tmp_path, workers=2) as server:
        assert fire(server, 20) == [200] * 20
        victim = max(pids_with_counter_files(server) & set(server.worker_pids()))
        # A live gauge file of the victim, as a `livesum` Gauge would write: child_exit must remove it.
        live_gauge = server.multiproc_dir / f"gauge_livesum_{victim}.db"
        live_gauge.write_bytes(b"")
        os.kill(victim, signal.SIGKILL)
        server.wait_for_workers(2, exclude={victim})
        assert not live_gauge.exists(), "child_exit did not mark the dead worker"
        assert fire(server, 10) == [200] * 10
        assert api_requests_in(scrape(server)) == 30


@pytest.mark.django_db
def test_the_scrape_reports_connections_limits_and_replication_of_every_server(client):
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    samples = parse(response.content.decode())
    for alias in ("default", "replica_1", "replica_2"):
        assert total(samples, "softfactory_db_up", alias=alias) == 1
        assert total(samples, "softfactory_db_max_connections", alias=alias) == 300  # scripts/stack
        assert total(samples, "softfactory_db_connections", alias=alias) >= 1  # the probe itself
    assert total(samples, "softfactory_db_replicas_expected") == 2
    assert total(samples, "softfactory_db_replicas_streaming", alias="default") == 2
    assert total(samples, "softfactory_db_invalid_indexes", alias="default") == 0
    assert "softfactory_db_pool_limit" not in samples  # no pool configured


@pytest.mark.django_db
def test_the_pool_limit_is_exported_when_configured(client, settings):
    settings.DATABASE_POOL_LIMIT = 25
    samples = parse(client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode())
    assert total(samples, "softfactory_db_pool_limit", alias="default") == 25


@pytest.mark.django_db(transaction=True)
def test_an_invalid_index_shows_in_the_scrape(client):
    name = connections["default"].settings_dict["NAME"]
    admin = psycopg2.connect(host="127.0.0.1", port=port_of("primary"), user="postgres", dbname=name)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute("CREATE TABLE ops_scratch (n int)")
            cur.execute("CREATE INDEX ops_scratch_n ON ops_scratch (n)")
            # What a failed CREATE INDEX CONCURRENTLY leaves behind (docs/MIGRATIONS.md).
            cur.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'ops_scratch_n'::regclass")
        samples = parse(client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode())
        assert total(samples, "softfactory_db_invalid_indexes", alias="default") == 1
    finally:
        with admin.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS ops_scratch")
        admin.close()
    samples = parse(client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode())
    assert total(samples, "softfactory_db_invalid_indexes", alias="default") == 0


@pytest.mark.django_db
def test_a_server_that_does_not_answer_is_reported_down_without_failing_the_scrape(client):
    replica = connections["replica_2"].settings_dict
    real_port = replica["PORT"]
    replica["PORT"] = str(free_port())  # nothing listens there
    try:
        response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    finally:
        replica["PORT"] = real_port
    assert response.status_code == 200
    samples = parse(response.content.decode())
    assert total(samples, "softfactory_db_up", alias="replica_2") == 0
    assert "replica_2" not in {labels["alias"] for labels, _ in samples["softfactory_db_max_connections"]}
    assert total(samples, "softfactory_db_up", alias="replica_1") == 1


@pytest.mark.django_db
def test_the_dispatcher_age_comes_from_its_record_in_redis_and_is_infinite_without_one(client):
    samples = parse(client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode())
    assert total(samples, "softfactory_sns_dispatcher_last_run_age_seconds") == float("inf")
    health.record_dispatcher_run(at=time.time() - 90)
    samples = parse(client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode())
    assert 90 <= total(samples, "softfactory_sns_dispatcher_last_run_age_seconds") < 100
