"""HTTP request metrics: the django-prometheus series the dashboards and alerts use, and no others.

django-prometheus's Before/After middleware pair updates about seventeen multiprocess counters and
histogram buckets per request (request and response body-size histograms, counts by transport,
by charset, an unlabelled latency histogram ...); nothing in deploy/ reads most of them, and in
multiprocess mode every update is a write to a memory-mapped file. This middleware keeps the
series that are read, with django-prometheus's names and labels:

* `django_http_requests_total_by_view_transport_method` (process_view, as upstream)
* `django_http_responses_total_by_status`, `..._by_status_view_method`
* `django_http_requests_latency_seconds_by_view_method` (from process_request to the response)
* `django_http_exceptions_total_by_type`, `..._by_view`
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django_prometheus.middleware import Metrics, PrometheusAfterMiddleware
from django_prometheus.utils import Time, TimeSince


class RequestMetricsMiddleware(PrometheusAfterMiddleware):
    """Place it last in MIDDLEWARE, where django-prometheus's After middleware would go."""

    def process_request(self, request: HttpRequest) -> None:
        request.prometheus_after_middleware_event = Time()  # type: ignore[attr-defined]

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        _record_response(self.metrics, request, response, self._method(request), self._get_view_name(request))
        return response


def _record_response(metrics: Any, request: HttpRequest, response: HttpResponseBase, method: str, view: str) -> None:
    status = str(response.status_code)
    metrics.responses_by_status.labels(status=status).inc()
    metrics.responses_by_status_view_method.labels(status=status, view=view, method=method).inc()
    started: Any = getattr(request, "prometheus_after_middleware_event", None)
    if started is not None:
        metrics.requests_latency_by_view_method.labels(view=view, method=request.method).observe(TimeSince(started))


def record_answered_early(request: HttpRequest, response: HttpResponseBase, *, view: str, started: float) -> None:
    """The series above for a GET answered before URL resolution and this middleware
    (softfactory.cache.EarlyHitsMiddleware), under the view name the answer would have had."""
    metrics = Metrics.get_instance()
    transport = "https" if request.is_secure() else "http"
    metrics.requests_by_view_transport_method.labels(view=view, transport=transport, method="GET").inc()
    request.prometheus_after_middleware_event = started  # type: ignore[attr-defined]
    _record_response(metrics, request, response, "GET", view)
