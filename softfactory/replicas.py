"""Health and lag of each database server, checked on a fresh short-timeout connection.

A fresh connection each time means a hung server costs at most `connect_timeout` and never
poisons the request's own persistent connections. Used by /readyz now and by the router's
health cache (docs/ROUTING.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import psycopg2
from django.conf import settings
from django.db import connections

PROBE_CONNECT_TIMEOUT = 1
PROBE_STATEMENT_TIMEOUT_MS = 500

# One round trip per replica. The CASE keeps an idle primary from looking like lag: when
# everything received has been replayed, the replica is as current as its stream.
REPLICA_HEALTH_SQL = """
SELECT pg_is_in_recovery(),
       pg_last_wal_replay_lsn()::text,
       pg_get_wal_replay_pause_state(),
       CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)
       END::float8,
       CASE WHEN %(primary_lsn)s::pg_lsn IS NULL THEN NULL
            ELSE GREATEST(pg_wal_lsn_diff(%(primary_lsn)s::pg_lsn, pg_last_wal_replay_lsn()), 0)
       END::bigint,
       (SELECT status FROM pg_stat_wal_receiver)
"""


@dataclass(frozen=True)
class ReplicaHealth:
    alias: str
    state: str  # streaming | lagging | paused | down | promoted
    lag_seconds: float | None = None
    lag_bytes: int | None = None
    replay_lsn: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k in ("alias", "state", "lag_seconds", "lag_bytes")}


def connect(alias: str, *, connect_timeout: int = PROBE_CONNECT_TIMEOUT) -> Any:
    """A new psycopg2 connection to an alias's server, outside Django's connection handling."""
    params = dict(connections[alias].get_connection_params())
    params.pop("cursor_factory", None)
    params["connect_timeout"] = connect_timeout
    params["options"] = f"-c statement_timeout={PROBE_STATEMENT_TIMEOUT_MS}"
    params["application_name"] = "softfactory-probe"
    conn = psycopg2.connect(**params)
    conn.autocommit = True
    return conn


def primary_insert_lsn() -> str | None:
    """The primary's current WAL insert position, or None when it can't be reached."""
    try:
        conn = connect("default")
    except psycopg2.Error:
        return None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_current_wal_insert_lsn()::text")
            return str(cur.fetchone()[0])
    except psycopg2.Error:
        return None
    finally:
        conn.close()


def probe_replica(alias: str, primary_lsn: str | None) -> ReplicaHealth:
    try:
        conn = connect(alias)
    except psycopg2.Error as exc:
        return ReplicaHealth(alias, "down", error=str(exc).strip())
    try:
        with conn.cursor() as cur:
            cur.execute(REPLICA_HEALTH_SQL, {"primary_lsn": primary_lsn})
            in_recovery, replay_lsn, pause_state, lag_s, lag_bytes, receiver = cur.fetchone()
    except psycopg2.Error as exc:
        return ReplicaHealth(alias, "down", error=str(exc).strip())
    finally:
        conn.close()
    if not in_recovery:
        return ReplicaHealth(alias, "promoted")
    lag_s = round(float(lag_s), 3)
    if pause_state != "not paused":
        state = "paused"
    elif (
        receiver != "streaming"
        or lag_s > settings.REPLICA_MAX_LAG_SECONDS
        or (lag_bytes is not None and lag_bytes > settings.REPLICA_MAX_LAG_BYTES)
    ):
        state = "lagging"
    else:
        state = "streaming"
    return ReplicaHealth(alias, state, lag_s, lag_bytes, replay_lsn)


def probe_all() -> tuple[str | None, list[ReplicaHealth]]:
    primary_lsn = primary_insert_lsn()
    return primary_lsn, [probe_replica(alias, primary_lsn) for alias in settings.REPLICA_ALIASES]
