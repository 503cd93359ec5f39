"""The request metrics middleware records the series deploy/ reads, and skips the ones nothing reads."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

pytestmark = pytest.mark.django_db

VIEW = "chef-list"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_request_counts_its_status_view_and_latency_and_nothing_else(client):
    before = {
        "by_status": sample("django_http_responses_total_by_status_total", status="200"),
        "by_view": sample(
            "django_http_responses_total_by_status_view_method_total", status="200", view=VIEW, method="GET"
        ),
        "latency": sample("django_http_requests_latency_seconds_by_view_method_count", view=VIEW, method="GET"),
        "routed": sample(
            "django_http_requests_total_by_view_transport_method_total", view=VIEW, transport="http", method="GET"
        ),
        "body_bytes": sample("django_http_responses_body_total_bytes_count"),
        "by_charset": sample("django_http_responses_total_by_charset_total", charset="utf-8"),
    }

    assert client.get("/api/coocook/chefs").status_code == 200

    assert sample("django_http_responses_total_by_status_total", status="200") == before["by_status"] + 1
    assert (
        sample("django_http_responses_total_by_status_view_method_total", status="200", view=VIEW, method="GET")
        == before["by_view"] + 1
    )
    assert (
        sample("django_http_requests_latency_seconds_by_view_method_count", view=VIEW, method="GET")
        == before["latency"] + 1
    )
    assert (
        sample("django_http_requests_total_by_view_transport_method_total", view=VIEW, transport="http", method="GET")
        == before["routed"] + 1
    )
    # Series no dashboard or alert reads are not updated per request any more.
    assert sample("django_http_responses_body_total_bytes_count") == before["body_bytes"]
    assert sample("django_http_responses_total_by_charset_total", charset="utf-8") == before["by_charset"]
