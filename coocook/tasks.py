"""coocook: Celery tasks (thin adapters over services; docs/SCHEDULING.md)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from coocook import services


@shared_task(ignore_result=True)
def complete_finished_bookings() -> int:
    """Beat: mark confirmed bookings whose end has passed as completed."""
    return services.bookings_complete_finished(now=timezone.now())
