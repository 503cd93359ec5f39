"""The app's own Prometheus metrics (django-prometheus covers HTTP, database and cache basics).

Gauges declare how to combine values across gunicorn workers in multiprocess mode.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DB_ROUTE = Counter("softfactory_db_route", "Read routing decisions", ["alias", "reason"])
REPLICA_LAG_SECONDS = Gauge(
    "softfactory_replica_lag_seconds", "Replica replay lag in seconds", ["alias"], multiprocess_mode="mostrecent"
)
REPLICA_LAG_BYTES = Gauge(
    "softfactory_replica_lag_bytes", "Replica replay lag in bytes of WAL", ["alias"], multiprocess_mode="mostrecent"
)
REPLICA_BREAKER_STATE = Gauge(
    "softfactory_replica_breaker_state",
    "Circuit breaker per replica: 0 closed, 1 half-open, 2 open",
    ["alias"],
    multiprocess_mode="mostrecent",
)
REPLICA_FAILURES = Counter("softfactory_replica_failures", "Failed replica connects, probes or queries", ["alias"])
ROUTING_POSITION_ERRORS = Counter(
    "softfactory_routing_position_errors", "Read-your-writes positions that could not be read or written", ["op"]
)

# --- response cache (softfactory/cache.py, docs/CACHING.md) ------------------------------
CACHE_REQUESTS = Counter(
    "softfactory_cache_requests", "Cached-read lookups by namespace and result", ["namespace", "result"]
)  # result: hit, miss, early_refresh, error, bypass
CACHE_FILL_SOURCE = Counter(
    "softfactory_cache_fill_source", "Cache fills by the database server they read", ["namespace", "source"]
)  # source: replica, primary
CACHE_FILL_SECONDS = Histogram("softfactory_cache_fill_seconds", "Time to compute a cache fill", ["namespace"])
CACHE_INVALIDATIONS = Counter(
    "softfactory_cache_invalidations", "Namespace generation bumps by outcome", ["namespace", "outcome"]
)  # outcome: ok, failed, retried
CACHE_LOCK = Counter("softfactory_cache_lock", "Fill-lock outcomes", ["namespace", "outcome"])

# --- SNS publishing and background work (docs/SCHEDULING.md) ----------------------------
SNS_POSTS = Gauge("softfactory_sns_posts", "SNS posts by status", ["status"], multiprocess_mode="mostrecent")
SNS_PUBLISH_DELAY = Histogram(
    "softfactory_sns_publish_delay_seconds",
    "published_at - scheduled_at of published posts",
    buckets=(0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300, 900, 3600),
)
SNS_PUBLISH = Counter("softfactory_sns_publish", "Publish attempts by outcome", ["outcome"])
SNS_DISPATCHER_LAST_RUN = Gauge(
    "softfactory_sns_dispatcher_last_run_timestamp_seconds",
    "Unix time of the last completed dispatcher run",
    multiprocess_mode="mostrecent",
)
CELERY_TASKS = Counter("softfactory_celery_tasks", "Celery task runs by task and outcome", ["task", "outcome"])

# --- database servers, computed at scrape time (softfactory/health.py, docs/DEPLOYMENT.md) ---
# These are not prometheus_client objects: /metrics asks each server on every scrape, so the
# values are the servers' own and never a stale sample left in a worker's multiprocess file.
DB_SCRAPE_METRICS = {
    "softfactory_db_up": "1 when the database server of an alias answered the scrape-time probe",
    "softfactory_db_connections": "Client connections on the server by state (pg_stat_activity)",
    "softfactory_db_max_connections": "The server's max_connections",
    "softfactory_db_reserved_connections": "Connections kept for superusers (superuser_reserved_connections)",
    "softfactory_db_pool_limit": "Server connections the pool in front of the primary may open (DATABASE_POOL_LIMIT)",
    "softfactory_db_replicas_expected": "Replica aliases the app is configured with",
    "softfactory_db_replicas_streaming": "Replicas the primary is streaming to (pg_stat_replication)",
    "softfactory_db_invalid_indexes": "INVALID indexes that no session is building (pg_index.indisvalid)",
    "softfactory_db_replay_lag_seconds": "Replica replay lag in seconds, asked of the replica at scrape time",
    "softfactory_db_replay_lag_bytes": "Replica replay lag in bytes of WAL behind the primary, at scrape time",
}
# Age of the SNS dispatcher's last completed run, from the record it keeps in Redis (+Inf: none).
SNS_DISPATCHER_AGE_METRIC = "softfactory_sns_dispatcher_last_run_age_seconds"
