"""Operational endpoints: liveness, readiness and the Prometheus scrape."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_prometheus.exports import ExportToDjangoView
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from softfactory import replicas

PRIMARY_DOWN_RETRY_AFTER = "5"


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the process serves; touches nothing else."""
    return JsonResponse({"status": "ok"})


def cache_state() -> str:
    try:
        get_redis_connection("default").ping()
    except (RedisError, OSError):
        return "down"
    return "up"


def scheduler_state() -> dict[str, Any]:
    # The SNS dispatcher records its last run in the cache (docs/SCHEDULING.md).
    last = caches["default"].get("scheduler:last_dispatch_at")
    if last is None:
        return {"last_dispatch_age_seconds": None}
    return {"last_dispatch_age_seconds": round(max(time.time() - float(last), 0.0), 3)}


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Primary, replicas, cache and scheduler; 503 only when the primary is unreachable."""
    primary_lsn, replica_health = replicas.probe_all()
    body = {
        "primary": {"state": "up" if primary_lsn is not None else "down"},
        "replicas": [health.as_dict() for health in replica_health],
        "cache": {"state": cache_state()},
        "scheduler": scheduler_state(),
    }
    response = JsonResponse(body, status=200 if primary_lsn is not None else 503)
    if primary_lsn is None:
        response["Retry-After"] = PRIMARY_DOWN_RETRY_AFTER
    return response


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format, for the addresses in METRICS_ALLOWED_ADDRESSES only."""
    if request.META.get("REMOTE_ADDR") not in settings.METRICS_ALLOWED_ADDRESSES:
        return HttpResponseForbidden("metrics are not served to this address\n")
    return ExportToDjangoView(request)
