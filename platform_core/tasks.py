"""platform_core: Celery tasks (notification outbox and housekeeping; docs/SCHEDULING.md)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from platform_core import housekeeping, notifications


@shared_task(ignore_result=True)
def deliver_notification(notification_id: int) -> str:
    """Send one outbox email (queued after the commit that wrote it)."""
    return notifications.notification_deliver(notification_id=notification_id)


@shared_task(ignore_result=True)
def deliver_pending_notifications() -> dict[str, int]:
    """Beat: send outbox emails whose post-commit message was lost, and due retries."""
    return notifications.notifications_deliver_pending(limit=settings.NOTIFICATION_BATCH)


@shared_task(ignore_result=True)
def clear_expired_sessions() -> None:
    """Beat: delete expired sessions."""
    housekeeping.sessions_clear_expired()


@shared_task(ignore_result=True)
def purge_idempotency_records() -> int:
    """Beat: delete idempotency records older than 24 h."""
    return housekeeping.idempotency_records_purge(now=timezone.now())
