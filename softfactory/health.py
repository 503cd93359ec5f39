"""Operational endpoints: liveness, readiness and the Prometheus scrape."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from typing import Any

import psycopg2
from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_redis import get_redis_connection
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from softfactory import replicas
from softfactory.metrics import DB_SCRAPE_METRICS, SNS_DISPATCHER_AGE_METRIC

PRIMARY_DOWN_RETRY_AFTER = "5"


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the process serves; touches nothing else."""
    return JsonResponse({"status": "ok"})


def cache_state() -> str:
    try:
        get_redis_connection("default").ping()
    except (RedisError, OSError):
        return "down"
    return "up"


# Unix time at which the SNS dispatcher last finished a run (docs/SCHEDULING.md). Written by
# every run, with no expiry: an old value must read as "stalled for that long", not vanish.
SCHEDULER_LAST_RUN_KEY = "scheduler:last_dispatch_at"


def record_dispatcher_run(at: float | None = None) -> None:
    """Record that the dispatcher finished a run now (or at `at`); Redis errors are ignored."""
    caches["default"].set(SCHEDULER_LAST_RUN_KEY, time.time() if at is None else at, timeout=None)


def scheduler_state() -> dict[str, Any]:
    """Age of the last dispatcher run; None when none is recorded (never ran, or Redis lost it)."""
    last = caches["default"].get(SCHEDULER_LAST_RUN_KEY)
    try:
        age = max(time.time() - float(last), 0.0)
    except (TypeError, ValueError):
        return {"last_dispatch_age_seconds": None}
    return {"last_dispatch_age_seconds": round(age, 3)}


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Primary, replicas, cache and scheduler; 503 only when the primary is unreachable."""
    primary_lsn, replica_health = replicas.probe_all()
    body = {
        "primary": {"state": "up" if primary_lsn is not None else "down"},
        "replicas": [health.as_dict() for health in replica_health],
        "cache": {"state": cache_state()},
        "scheduler": scheduler_state(),
    }
    response = JsonResponse(body, status=200 if primary_lsn is not None else 503)
    if primary_lsn is None:
        response["Retry-After"] = PRIMARY_DOWN_RETRY_AFTER
    return response


# pg_stat_activity states as label values; NULL (a session the role may not see) is "unknown".
_CONNECTION_STATES_SQL = """
SELECT COALESCE(replace(replace(state, ' (aborted)', '_aborted'), ' ', '_'), 'unknown'), count(*)
FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1
"""
_LIMITS_SQL = "SELECT current_setting('max_connections')::int, current_setting('superuser_reserved_connections')::int"
# Only the primary has these. An index a session is still building is INVALID until the build
# ends; it is left out (pg_stat_progress_create_index), as `manage.py check_indexes` does.
_PRIMARY_SQL = """
SELECT (SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'),
       (SELECT count(*) FROM pg_index i WHERE NOT i.indisvalid
          AND i.indexrelid NOT IN (SELECT index_relid FROM pg_stat_progress_create_index
                                   WHERE index_relid IS NOT NULL)),
       pg_current_wal_insert_lsn()::text
"""
_DB_SCRAPE_LABELS = {"softfactory_db_connections": ["alias", "state"], "softfactory_db_replicas_expected": []}


class DatabaseServerCollector(Collector):
    """Connections, limits, replication, lag and INVALID indexes of every alias's server, asked at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauges = {
            name: GaugeMetricFamily(name, help_text, labels=_DB_SCRAPE_LABELS.get(name, ["alias"]))
            for name, help_text in DB_SCRAPE_METRICS.items()
        }
        gauges["softfactory_db_replicas_expected"].add_metric([], len(settings.REPLICA_ALIASES))
        if settings.DATABASE_POOL_LIMIT:
            gauges["softfactory_db_pool_limit"].add_metric(["default"], settings.DATABASE_POOL_LIMIT)
        primary_lsn = None
        for alias in ["default", *settings.REPLICA_ALIASES]:
            try:
                conn = replicas.connect(alias)
            except psycopg2.Error:
                gauges["softfactory_db_up"].add_metric([alias], 0)
                continue
            try:
                with conn.cursor() as cur:
                    cur.execute(_CONNECTION_STATES_SQL)
                    states = cur.fetchall()
                    cur.execute(_LIMITS_SQL)
                    max_connections, reserved = cur.fetchone()
                    if alias == "default":
                        cur.execute(_PRIMARY_SQL)
                        streaming, invalid, primary_lsn = cur.fetchone()
                    else:
                        # The replica's own answer, the query the router's probe uses (docs/ROUTING.md).
                        cur.execute(replicas.REPLICA_HEALTH_SQL, {"primary_lsn": primary_lsn})
                        lag_seconds, lag_bytes = cur.fetchone()[3:5]
            except psycopg2.Error:
                gauges["softfactory_db_up"].add_metric([alias], 0)
                continue
            finally:
                conn.close()
            gauges["softfactory_db_up"].add_metric([alias], 1)
            for state, count in states:
                gauges["softfactory_db_connections"].add_metric([alias, str(state)], int(count))
            gauges["softfactory_db_max_connections"].add_metric([alias], int(max_connections))
            gauges["softfactory_db_reserved_connections"].add_metric([alias], int(reserved))
            if alias == "default":
                gauges["softfactory_db_replicas_streaming"].add_metric([alias], int(streaming))
                gauges["softfactory_db_invalid_indexes"].add_metric([alias], int(invalid))
            else:
                gauges["softfactory_db_replay_lag_seconds"].add_metric([alias], float(lag_seconds))
                if lag_bytes is not None:
                    gauges["softfactory_db_replay_lag_bytes"].add_metric([alias], int(lag_bytes))
        yield from gauges.values()


class SchedulerCollector(Collector):
    """Age of the SNS dispatcher's last run, from its record in Redis: right whichever process ran it."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        age = scheduler_state()["last_dispatch_age_seconds"]
        gauge = GaugeMetricFamily(SNS_DISPATCHER_AGE_METRIC, "Seconds since the SNS dispatcher last completed a run")
        gauge.add_metric([], math.inf if age is None else float(age))
        yield gauge


def _app_registry() -> CollectorRegistry:
    # Under gunicorn every worker writes its samples to PROMETHEUS_MULTIPROC_DIR (set by the
    # launcher, gunicorn.conf.py); a fresh registry per scrape adds them up across workers.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format, for the addresses in METRICS_ALLOWED_ADDRESSES only."""
    if request.META.get("REMOTE_ADDR") not in settings.METRICS_ALLOWED_ADDRESSES:
        return HttpResponseForbidden("metrics are not served to this address\n")
    servers = CollectorRegistry()
    servers.register(DatabaseServerCollector())
    servers.register(SchedulerCollector())
    body = generate_latest(_app_registry()) + generate_latest(servers)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
