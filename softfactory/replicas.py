"""Health and lag of each database server, checked on short-deadline probe connections.

Probes run on their own connections, never the request's: a hung server can't poison those.
Each process keeps one probe connection per server (`ProbeConnections`) instead of opening a
new one per probe — the router probes every server about once a second in every web and worker
process, and a new PostgreSQL connection is a backend fork on the server. Every probe query
runs in psycopg2's asynchronous mode under a client-side deadline, so a hung server (stopped
process, dead network) costs at most that deadline, as a fresh connection's `connect_timeout`
did; a connection that failed or timed out is dropped and the next probe connects again.
Used by /readyz and by the router's health cache (docs/ROUTING.md).
"""

from __future__ import annotations

import os
import random
import select
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import psycopg2
import psycopg2.extensions
from django.conf import settings
from django.db import DatabaseError, connections

from softfactory import metrics

PROBE_CONNECT_TIMEOUT = 1
PROBE_STATEMENT_TIMEOUT_MS = 500
# Client-side bound on one probe query (the server's statement_timeout can't fire on a hung server).
PROBE_QUERY_DEADLINE_SECONDS = 1.0

# One round trip per replica. The CASE keeps an idle primary from looking like lag: when
# everything received has been replayed, the replica is as current as its stream. (After a
# restart the receive position starts at the segment boundary, behind replay: also current;
# real distance from the primary shows in the byte lag.)
REPLICA_HEALTH_SQL = """
SELECT pg_is_in_recovery(),
       pg_last_wal_replay_lsn()::text,
       CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() END,  -- errors on a primary
       CASE WHEN COALESCE(pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn(), true) THEN 0
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


def _probe_params(alias: str, connect_timeout: int) -> dict[str, Any]:
    params = dict(connections[alias].get_connection_params())
    params.pop("cursor_factory", None)
    params["connect_timeout"] = connect_timeout
    params["options"] = f"-c statement_timeout={PROBE_STATEMENT_TIMEOUT_MS}"
    params["application_name"] = "softfactory-probe"
    return params


def connect(alias: str, *, connect_timeout: int = PROBE_CONNECT_TIMEOUT) -> Any:
    """A new psycopg2 connection to an alias's server, outside Django's connection handling."""
    conn = psycopg2.connect(**_probe_params(alias, connect_timeout))
    conn.autocommit = True
    return conn


class ProbeTimeout(psycopg2.OperationalError):
    """The server did not answer a probe before its deadline."""


def _wait(conn: Any, deadline: float) -> None:
    """Drive an asynchronous psycopg2 connection until its operation is done or the deadline passes."""
    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProbeTimeout(f"no answer within {PROBE_QUERY_DEADLINE_SECONDS:g} s")
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN if state == psycopg2.extensions.POLL_READ else select.POLLOUT)
        poller.poll(remaining * 1000)


class ProbeConnections:
    """One asynchronous probe connection per alias, per process, reused across probes.

    A connection in use by one thread is not shared: a concurrent probe of the same alias (e.g.
    /readyz while the router probes) gets a one-off connection. Connections inherited over a
    fork are left alone (closing them would end the parent's session) and the child connects.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.idle: dict[tuple[int, str, str], Any] = {}
        self.inherited: list[Any] = []  # kept referenced so their finaliser never runs in a child

    @staticmethod
    def _key(alias: str) -> tuple[int, str, str]:
        # The server's address is part of the key: tests (and failover tooling) re-point aliases.
        params = _probe_params(alias, PROBE_CONNECT_TIMEOUT)
        return (
            os.getpid(),
            alias,
            f"{params.get('host')}:{params.get('port')}/{params.get('dbname') or params.get('database')}",
        )

    def _checkout(self, alias: str) -> Any | None:
        key = self._key(alias)
        with self.lock:
            for other in [k for k in self.idle if k[0] != key[0]]:
                self.inherited.append(self.idle.pop(other))
            conn = self.idle.pop(key, None)
        return None if conn is None or conn.closed else conn

    def _checkin(self, alias: str, conn: Any) -> None:
        key = self._key(alias)
        with self.lock:
            if key in self.idle:
                conn.close()  # another thread returned one meanwhile: keep one
            else:
                self.idle[key] = conn

    def query(self, alias: str, sql: str, params: Any = None) -> tuple[Any, ...]:
        """One row of `sql` on the alias's server; psycopg2.Error (ProbeTimeout included) on failure."""
        conn = self._checkout(alias)
        if conn is not None:
            try:
                return self._run(alias, conn, sql, params)
            except ProbeTimeout:
                raise  # a hung server: a second try would only double the wait
            except psycopg2.Error:
                pass  # an idle connection dies with a server restart; only a fresh one failing counts
        conn = psycopg2.connect(**_probe_params(alias, PROBE_CONNECT_TIMEOUT), async_=1)
        try:
            _wait(conn, time.monotonic() + PROBE_CONNECT_TIMEOUT)
        except BaseException:
            conn.close()
            raise
        return self._run(alias, conn, sql, params)

    def _run(self, alias: str, conn: Any, sql: str, params: Any) -> tuple[Any, ...]:
        try:
            cursor = conn.cursor()
            cursor.execute(sql, params)
            _wait(conn, time.monotonic() + PROBE_QUERY_DEADLINE_SECONDS)
            row = cursor.fetchone()
        except BaseException:
            conn.close()  # a timed-out or broken connection is never reused
            raise
        self._checkin(alias, conn)
        return tuple(row)

    def close_all(self) -> None:
        with self.lock:
            pid = os.getpid()
            for key in [k for k in self.idle if k[0] == pid]:
                self.idle.pop(key).close()


probes = ProbeConnections()


def primary_insert_lsn() -> str | None:
    """The primary's current WAL insert position, or None when it can't be reached."""
    try:
        return str(probes.query("default", "SELECT pg_current_wal_insert_lsn()::text")[0])
    except psycopg2.Error:
        return None


def probe_replica(alias: str, primary_lsn: str | None) -> ReplicaHealth:
    try:
        row = probes.query(alias, REPLICA_HEALTH_SQL, {"primary_lsn": primary_lsn})
    except psycopg2.Error as exc:
        return ReplicaHealth(alias, "down", error=str(exc).strip())
    in_recovery, replay_lsn, pause_state, lag_s, lag_bytes, receiver = row
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


# --- the router's view of the replicas ---------------------------------------------------


def parse_lsn(lsn: str) -> int:
    """'16/B374D848' -> a 64-bit integer; WAL positions compare as numbers, never as strings."""
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
BREAKER_STATE_VALUE = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


@dataclass
class ReplicaView:
    """What one process knows about one replica: its last probe and its circuit breaker."""

    alias: str
    health: ReplicaHealth | None = None
    checked_at: float = float("-inf")
    replay_lsn: int = 0
    replay_checked_at: float = float("-inf")
    breaker: str = CLOSED
    failures: int = 0
    open_until: float = 0.0

    def fresh_enough(self, *, max_lag_factor: float = 1.0) -> bool:
        if self.breaker == OPEN or self.health is None:
            return False
        h = self.health
        if h.state in ("down", "promoted", "paused"):
            return False
        if h.state == "streaming":
            return True
        # "lagging": usable only when the limits are relaxed and it is within them.
        if max_lag_factor <= 1.0 or h.lag_seconds is None:
            return False
        within_seconds = h.lag_seconds <= settings.REPLICA_MAX_LAG_SECONDS * max_lag_factor
        within_bytes = h.lag_bytes is None or h.lag_bytes <= settings.REPLICA_MAX_LAG_BYTES * max_lag_factor
        return within_seconds and within_bytes


class ReplicaMonitor:
    """Per-process health, lag and circuit breakers of the replicas, checked lazily.

    A replica is probed at most once per REPLICA_CHECK_INTERVAL_SECONDS (on a fresh
    short-timeout connection, see `probe_replica`). A failed probe, connect or query opens its
    breaker for a jittered, growing cool-down; after it the next probe is the half-open trial.
    """

    def __init__(
        self,
        *,
        clock: Any = None,
        prober: Any = None,
        primary_lsn: Any = None,
    ) -> None:
        self.clock = clock or time.monotonic
        self.prober = prober or probe_replica
        self.primary_lsn = primary_lsn or primary_insert_lsn
        self.views: dict[str, ReplicaView] = {}
        self.lock = threading.Lock()

    def view(self, alias: str) -> ReplicaView:
        if alias not in self.views:
            self.views[alias] = ReplicaView(alias)
        return self.views[alias]

    def _due(self, view: ReplicaView, now: float) -> bool:
        if view.breaker == OPEN:
            return now >= view.open_until
        return now - view.checked_at >= settings.REPLICA_CHECK_INTERVAL_SECONDS

    def refresh(self) -> None:
        now = self.clock()
        stale = [self.view(a) for a in settings.REPLICA_ALIASES if self._due(self.view(a), now)]
        if not stale or not self.lock.acquire(blocking=False):
            return  # fresh enough, or another thread of this process is probing right now
        try:
            primary_lsn = self.primary_lsn()
            for view in stale:
                if view.breaker == OPEN:
                    view.breaker = HALF_OPEN
                self._record(view, self.prober(view.alias, primary_lsn), self.clock())
        finally:
            self.lock.release()

    def _record(self, view: ReplicaView, health: ReplicaHealth, now: float) -> None:
        view.health = health
        view.checked_at = now
        if health.state == "down":
            self._open(view, now)
        else:
            view.breaker, view.failures = CLOSED, 0
            if health.replay_lsn:
                view.replay_lsn, view.replay_checked_at = parse_lsn(health.replay_lsn), now
        self._export(view)

    def _open(self, view: ReplicaView, now: float) -> None:
        view.failures += 1
        cooldown = min(settings.REPLICA_BREAKER_COOLDOWN_SECONDS * 2 ** (view.failures - 1), 30.0)
        view.breaker = OPEN
        view.open_until = now + cooldown * random.uniform(1.0, 1.5)  # jitter: workers don't retry in step
        metrics.REPLICA_FAILURES.labels(view.alias).inc()

    def report_failure(self, alias: str) -> None:
        """A connect or query on this replica failed: stop using it until a probe says otherwise."""
        view = self.view(alias)
        if view.breaker != OPEN:
            self._open(view, self.clock())
            view.health = ReplicaHealth(alias, "down", error="connection or query failed")
            self._export(view)

    def _export(self, view: ReplicaView) -> None:
        metrics.REPLICA_BREAKER_STATE.labels(view.alias).set(BREAKER_STATE_VALUE[view.breaker])
        if view.health is not None and view.health.lag_seconds is not None:
            metrics.REPLICA_LAG_SECONDS.labels(view.alias).set(view.health.lag_seconds)
        if view.health is not None and view.health.lag_bytes is not None:
            metrics.REPLICA_LAG_BYTES.labels(view.alias).set(view.health.lag_bytes)

    def usable(self, *, max_lag_factor: float = 1.0) -> list[str]:
        self.refresh()
        return [a for a in settings.REPLICA_ALIASES if self.view(a).fresh_enough(max_lag_factor=max_lag_factor)]

    def caught_up(self, aliases: list[str], required: int) -> list[str]:
        """The aliases whose replay position has reached `required`, each at most ~100 ms old."""
        ready = []
        for alias in aliases:
            view = self.view(alias)
            if view.replay_lsn < required and self.clock() - view.replay_checked_at > REPLAY_POSITION_MAX_AGE:
                self._refresh_replay(view)
            if view.replay_lsn >= required:
                ready.append(alias)
        return ready

    def _refresh_replay(self, view: ReplicaView) -> None:
        lsn = None
        for attempt in range(2):
            try:
                with connections[view.alias].cursor() as cursor:
                    cursor.execute("SELECT pg_last_wal_replay_lsn()::text")
                    (lsn,) = cursor.fetchone()
                break
            except DatabaseError:
                # A persistent connection may have died while idle; only a fresh one failing counts.
                connections[view.alias].close()
                if attempt:
                    self.report_failure(view.alias)
                    return
        if lsn:
            view.replay_lsn, view.replay_checked_at = parse_lsn(lsn), self.clock()

    def substitutes(self, failed: str, *, required_lsn: int | None = None) -> list[str]:
        """Where a read meant for `failed` can go instead: other usable replicas that replayed the
        client's position (if it has one), then the primary."""
        others = [a for a in self.usable() if a != failed]
        if required_lsn:
            others = self.caught_up(others, required_lsn)
        random.shuffle(others)
        return [*others, "default"]


REPLAY_POSITION_MAX_AGE = 0.1
monitor = ReplicaMonitor()
