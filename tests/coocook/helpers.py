"""Helpers shared by the coocook tests."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext


def get_queries(client, path: str, params: dict | None = None) -> tuple[object, list[str]]:
    """GET `path` and return (response, the SQL it ran on the primary connection)."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, params or {})
    return response, [query["sql"] for query in captured.captured_queries]


def domain_queries(queries: list[str]) -> list[str]:
    """The queries that read coocook tables (not auth or routing bookkeeping)."""
    return [sql for sql in queries if "coocook_" in sql]


def assert_query_budget(queries: list[str], *, domain: int) -> None:
    """Exactly `domain` coocook queries, and besides them at most the token lookup.

    The token cache lives in the shared Redis, so whether a signed-in request looks its token up
    in the database is not coocook's to control; everything else is.
    """
    assert len(domain_queries(queries)) == domain, queries
    others = [sql for sql in queries if "coocook_" not in sql]
    assert len(others) <= 1, others
    assert all("platform_core_authtoken" in sql for sql in others), others
