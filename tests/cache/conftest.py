"""Fixtures for the response-cache tests: real Redis (the suite's databases), real replicas."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connections
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from softfactory import cache
from softfactory.replicas import monitor


@pytest.fixture(autouse=True)
def fresh_cache_state() -> Iterator[None]:
    """Each test starts with a closed breaker, no failed bumps, no hooks and fresh replica views."""
    cache.reset_for_tests()
    for point in cache.hooks.values():
        point.clear()
    monitor.views.clear()
    yield
    for point in cache.hooks.values():
        point.clear()
    cache.reset_for_tests()
    monitor.views.clear()


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def requests_metric(namespace: str, result: str) -> float:
    return metric("softfactory_cache_requests_total", namespace=namespace, result=result)


def fill_source_metric(namespace: str, source: str) -> float:
    return metric("softfactory_cache_fill_source_total", namespace=namespace, source=source)


def invalidations_metric(namespace: str, outcome: str) -> float:
    return metric("softfactory_cache_invalidations_total", namespace=namespace, outcome=outcome)


def anonymous() -> APIClient:
    return APIClient()


def close_thread_connections() -> None:
    for conn in connections.all():
        conn.close()


def clients(count: int) -> list[APIClient]:
    """Clients sharing one WSGI handler, as the threads of one app process share theirs."""
    first = APIClient()
    assert first.get("/healthz").status_code == 200  # loads the middleware once
    out = [first]
    for _ in range(count - 1):
        client = APIClient()
        client.handler = first.handler
        out.append(client)
    return out
