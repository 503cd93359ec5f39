"""review: Celery tasks (thin adapters over services; docs/SCHEDULING.md)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from review import services


@shared_task(ignore_result=True)
def close_campaigns_past_deadline() -> int:
    """Beat: close active campaigns whose deadline has come."""
    return services.campaigns_close_past_deadline(now=timezone.now())
