"""The app's own Prometheus metrics (django-prometheus covers HTTP, database and cache basics).

Gauges declare how to combine values across gunicorn workers in multiprocess mode.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

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
