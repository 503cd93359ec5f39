"""The project's database backend.

It builds on django-prometheus's PostgreSQL wrapper, so every alias (primary and replicas)
exports query and connection metrics, and adds what replica routing needs:

* a guard on replica connections that refuses anything but reads, loudly, before the server
  does (a replica would answer SQLSTATE 25006, which is easy to misread as a routing accident);
* a health check without a round trip (`is_usable`, run by CONN_HEALTH_CHECKS at the start of
  each request): Django's `SELECT 1` cost one extra round trip per connection per request;
* failover at connect time: when a replica can't be reached, its breaker opens and the
  connection is made to another usable replica, or the primary, instead — the client never
  sees the dead replica (docs/ROUTING.md). Such a stand-in connection is closed at the end of
  the request, so the alias goes back to its own server once it recovers.
"""

from __future__ import annotations

import re
import select
from collections.abc import Callable
from typing import Any

import psycopg2
import psycopg2.extensions
from django.db import OperationalError, ProgrammingError, connections
from django_prometheus.db.backends.postgresql import base as prometheus_base

_READ_STATEMENT = re.compile(r"^\s*\(?\s*(SELECT|SHOW|EXPLAIN|WITH)\b", re.IGNORECASE)
_LOCKING_CLAUSE = re.compile(r"\bFOR\s+(NO\s+KEY\s+UPDATE|UPDATE|KEY\s+SHARE|SHARE)\b", re.IGNORECASE)
_MODIFYING_CTE = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE)\b", re.IGNORECASE)


class ReplicaWriteError(ProgrammingError):
    """A statement other than a read was sent to a replica connection."""


def is_read_only_statement(sql: str) -> bool:
    match = _READ_STATEMENT.match(sql)
    if match is None:
        return False
    # SELECT … FOR UPDATE and data-modifying CTEs are writes in disguise.
    if _LOCKING_CLAUSE.search(sql):
        return False
    return not (match.group(1).upper() == "WITH" and _MODIFYING_CTE.search(sql))


def _replica_guard(alias: str) -> Callable[..., Any]:
    def guard(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        if not is_read_only_statement(sql):
            raise ReplicaWriteError(f"refusing to run a non-read statement on replica alias {alias!r}: {sql[:120]}")
        try:
            return execute(sql, params, many, context)
        except OperationalError:
            # The server went away mid-query: stop choosing it until a probe says it is back.
            from softfactory.replicas import monitor

            monitor.report_failure(alias)
            raise

    return guard


class DatabaseWrapper(prometheus_base.DatabaseWrapper):
    def __init__(self, settings_dict: dict[str, Any], alias: str = "default") -> None:
        super().__init__(settings_dict, alias)
        self.is_replica = settings_dict.get("ROLE") == "replica"
        self.stand_in_for: str | None = None
        if self.is_replica:
            self.execute_wrappers.append(_replica_guard(alias))

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        self.stand_in_for = None
        try:
            return super().get_new_connection(conn_params)
        except psycopg2.OperationalError:
            if not self.is_replica:
                raise
        from softfactory.db_router import current_state
        from softfactory.replicas import monitor

        monitor.report_failure(self.alias)
        for alias in monitor.substitutes(self.alias, required_lsn=current_state().required_lsn):
            try:
                connection = super().get_new_connection(connections[alias].get_connection_params())
            except psycopg2.OperationalError:
                if alias != "default":
                    monitor.report_failure(alias)
                continue
            self.stand_in_for = alias
            return connection
        raise psycopg2.OperationalError(f"replica {self.alias} and every stand-in are unreachable")

    def is_usable(self) -> bool:
        """Whether the idle connection is still open, judged from its socket alone.

        A server that ends a session (restart, crash, `pg_terminate_backend`, idle timeout) sends
        its goodbye and closes the socket, so an idle connection with anything to read is dead
        (or holds a stray notice: reconnecting costs little). A server that is merely unreachable
        would hang Django's `SELECT 1` as well; the request's own query and the monitor's probes
        deal with that one.
        """
        conn = self.connection
        if conn is None or conn.closed:
            return False
        if conn.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
            return False
        try:
            poller = select.poll()
            poller.register(conn.fileno(), select.POLLIN)
            return not poller.poll(0)
        except (OSError, ValueError, psycopg2.Error):
            return False

    def close_if_unusable_or_obsolete(self) -> None:
        if self.stand_in_for is not None and self.connection is not None:
            self.close()
            return
        super().close_if_unusable_or_obsolete()
