"""The project's database backend.

It builds on django-prometheus's PostgreSQL wrapper, so every alias (primary and replicas)
exports query and connection metrics, and adds what replica routing needs:

* a guard on replica connections that refuses anything but reads, loudly, before the server
  does (a replica would answer SQLSTATE 25006, which is easy to misread as a routing accident);
* a single place to wrap connecting, where the router's failover hooks in (docs/ROUTING.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.db import ProgrammingError
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
        return execute(sql, params, many, context)

    return guard


class DatabaseWrapper(prometheus_base.DatabaseWrapper):
    def __init__(self, settings_dict: dict[str, Any], alias: str = "default") -> None:
        super().__init__(settings_dict, alias)
        self.is_replica = settings_dict.get("ROLE") == "replica"
        if self.is_replica:
            self.execute_wrappers.append(_replica_guard(alias))
