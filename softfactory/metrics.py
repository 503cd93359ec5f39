"""The app's own Prometheus metrics (django-prometheus covers HTTP, database and cache basics).

Gauges declare how to combine values across gunicorn workers in multiprocess mode.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DB_ROUTE = Counter("softfactory_db_route", "Read routing decisions", ["alias", "reason"])
REPLICA_LAG_SECONDS = Gauge(
    "softfactory_replica_lag_seconds", "Replica replay lag in seconds", ["alias"], multiprocess_mode="max"
)
REPLICA_LAG_BYTES = Gauge(
    "softfactory_replica_lag_bytes", "Replica replay lag in bytes of WAL", ["alias"], multiprocess_mode="max"
)
REPLICA_BREAKER_STATE = Gauge(
    "softfactory_replica_breaker_state",
    "Circuit breaker per replica: 0 closed, 1 half-open, 2 open",
    ["alias"],
    multiprocess_mode="max",
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
SNS_POSTS = Gauge("softfactory_sns_posts", "SNS posts by status", ["status"], multiprocess_mode="max")
SNS_PUBLISH_DELAY = Histogram(
    "softfactory_sns_publish_delay_seconds",
    "published_at - scheduled_at of published posts",
    buckets=(0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300, 900, 3600),
)
SNS_PUBLISH = Counter("softfactory_sns_publish", "Publish attempts by outcome", ["outcome"])
SNS_DISPATCHER_LAST_RUN = Gauge(
    "softfactory_sns_dispatcher_last_run_timestamp_seconds",
    "Unix time of the last completed dispatcher run",
    multiprocess_mode="max",
)
CELERY_TASKS = Counter("softfactory_celery_tasks", "Celery task runs by task and outcome", ["task", "outcome"])
