"""Notification emails through an outbox (docs/SCHEDULING.md).

`notify()` writes the email as a `Notification` row inside the caller's transaction, so the
email exists exactly when the change it reports commits. After commit a worker is asked to send
it; if that message is lost (broker down at commit, worker killed), the periodic sweep sends it.
A row is sent under a row lock (SKIP LOCKED), so the kick and the sweep never both send it; a
worker dying between the SMTP answer and its commit can send it twice (at least once).
"""

from __future__ import annotations

import logging
import random
import smtplib
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models.functions import Now
from django.utils import timezone

from platform_core.models import Notification

logger = logging.getLogger(__name__)
STATUS = Notification.Status


def _kick(notification_id: int) -> None:
    from platform_core import tasks

    tasks.deliver_notification.apply_async((notification_id,), retry=False)


def notify(*, user_id: int, kind: str, subject: str, body: str) -> Notification:
    """Write an email to a user into the outbox, in the caller's transaction; sent after commit."""
    notification = Notification.objects.create(user_id=user_id, kind=kind, subject=subject[:255], body=body)
    # robust=True: a broker outage must not turn the committed change into an error; the sweep sends it.
    notification_id = notification.pk
    transaction.on_commit(lambda: _kick(notification_id), robust=True)
    return notification


def _backoff(attempt: int) -> timedelta:
    ceiling = min(3600.0, settings.NOTIFICATION_BACKOFF_BASE * 2 ** max(attempt - 1, 0))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def _send(notification: Notification) -> str:
    message = EmailMessage(
        subject=notification.subject,
        body=notification.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.user.email],
    )
    notification.attempts += 1
    try:
        message.send()
    except (smtplib.SMTPException, OSError) as exc:
        permanent = isinstance(exc, smtplib.SMTPRecipientsRefused)
        notification.last_error = f"{exc!r} (attempt {notification.attempts})"[:2000]
        if permanent or notification.attempts >= settings.NOTIFICATION_MAX_ATTEMPTS:
            notification.status = STATUS.FAILED
        else:
            notification.next_attempt_at = timezone.now() + _backoff(notification.attempts)
        notification.save(update_fields=["attempts", "last_error", "status", "next_attempt_at"])
        logger.warning("notification %s not sent: %r", notification.pk, exc)
        return "failed" if notification.status == STATUS.FAILED else "retry"
    notification.status = STATUS.SENT
    notification.sent_at = timezone.now()
    notification.last_error = ""
    notification.save(update_fields=["attempts", "last_error", "status", "sent_at"])
    return "sent"


@transaction.atomic
def notification_deliver(*, notification_id: int) -> str:
    """Send one pending notification now; "skipped" if it is sent, failed or being sent elsewhere."""
    notification = (
        Notification.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("user")
        .filter(pk=notification_id, status=STATUS.PENDING)
        .first()
    )
    if notification is None:
        return "skipped"
    return _send(notification)


def notifications_deliver_pending(*, limit: int) -> dict[str, int]:
    """Send up to `limit` notifications that are due (the safety net behind the post-commit kick)."""
    with transaction.atomic():  # the primary: a replica could still show them pending
        due = list(
            Notification.objects.filter(status=STATUS.PENDING, next_attempt_at__lte=Now())
            .order_by("next_attempt_at", "id")
            .values_list("pk", flat=True)[:limit]
        )
    outcomes: dict[str, int] = {}
    for notification_id in due:
        outcome = notification_deliver(notification_id=notification_id)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes
