"""Periodic clean-ups of platform_core's tables (run by beat; docs/SCHEDULING.md)."""

from __future__ import annotations

from datetime import datetime, timedelta
from importlib import import_module

from django.conf import settings
from django.db import transaction

from platform_core.models import IdempotencyRecord

# API.md: idempotency keys are kept at least 24 h.
IDEMPOTENCY_RETENTION = timedelta(hours=24)
PURGE_BATCH = 5000


def sessions_clear_expired() -> None:
    """Delete expired sessions from the session store (the database rows of cached_db)."""
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()


def idempotency_records_purge(*, now: datetime) -> int:
    """Delete idempotency records older than 24 h, in short batches; returns how many."""
    cutoff = now - IDEMPOTENCY_RETENTION
    purged = 0
    while True:
        with transaction.atomic():
            batch = list(
                IdempotencyRecord.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:PURGE_BATCH]
            )
            if batch:
                IdempotencyRecord.objects.filter(pk__in=batch).delete()
        purged += len(batch)
        if len(batch) < PURGE_BATCH:
            return purged
