"""Notification emails through the outbox: written in the change's transaction, sent by a worker
after commit, and by the periodic sweep when the post-commit message was lost."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from coocook import services as coocook_services
from platform_core import notifications, tasks
from platform_core.models import Notification
from review import services as review_services
from review.models import Application
from softfactory.api import Conflict
from tests.coocook.factories import BookingFactory, ChefFactory, days_from_today
from tests.platform_core.factories import StaffFactory, UserFactory
from tests.review.factories import ApplicationFactory, CampaignFactory
from tests.workers import broker_unreachable, flush_broker, free_port, queue_length, wait_until

FILE_BACKEND = "django.core.mail.backends.filebased.EmailBackend"


def rolled_back(work) -> None:
    """Run `work()` in a transaction that then fails and rolls back."""
    with transaction.atomic():
        work()
        raise RuntimeError("the surrounding transaction fails")


def outbox_of(user) -> list[Notification]:
    return list(Notification.objects.using("default").filter(user=user).order_by("pk"))


def file_backend_env(directory: Path, **extra: str) -> dict[str, str]:
    return {"EMAIL_BACKEND": FILE_BACKEND, "EMAIL_FILE_PATH": str(directory), **extra}


def sent_files(directory: Path) -> str:
    return "".join(path.read_text() for path in sorted(directory.glob("*.log"))) if directory.exists() else ""


# --- written in the same transaction ----------------------------------------------------


def book(user, chef, day: int = 10):
    return coocook_services.booking_create(
        user=user,
        chef_id=chef.pk,
        booking_date=days_from_today(day),
        start_time=dt.time(18, 0),
        duration_hours=3,
        guests=2,
    )


@pytest.mark.django_db
def test_a_confirmed_booking_writes_a_pending_outbox_email_to_its_customer(user):
    chef = ChefFactory.create(name="Chef Baek")

    booking = book(user, chef)

    (row,) = outbox_of(user)
    assert (row.kind, row.status) == ("coocook.booking_confirmed", "pending")
    assert "Chef Baek" in row.subject and str(booking.pk) in row.body


@pytest.mark.django_db
def test_an_overlapping_booking_writes_no_outbox_email(user, other_user):
    chef = ChefFactory.create()
    book(user, chef)

    with pytest.raises(Conflict):
        book(other_user, chef)

    assert outbox_of(other_user) == []


@pytest.mark.django_db
def test_a_cancelled_booking_writes_an_outbox_email_to_its_customer(staff_user):
    booking = BookingFactory.create()

    coocook_services.booking_cancel(booking_id=booking.pk, by=staff_user)

    (row,) = outbox_of(booking.user)
    assert row.kind == "coocook.booking_cancelled"
    assert str(booking.pk) in row.body
    assert outbox_of(staff_user) == []


@pytest.mark.django_db
def test_applying_writes_a_pending_outbox_email_to_the_applicant(user):
    campaign = CampaignFactory.create()

    application = review_services.campaign_apply(campaign_id=campaign.pk, user=user, message="Me!")

    (row,) = outbox_of(user)
    assert (row.kind, row.status, row.sent_at) == ("review.application_received", "pending", None)
    assert str(application.pk) in row.body


@pytest.mark.django_db
def test_a_refused_or_rolled_back_application_writes_no_outbox_email(user):
    campaign = CampaignFactory.create()
    review_services.campaign_apply(campaign_id=campaign.pk, user=user)

    with pytest.raises(Conflict):
        review_services.campaign_apply(campaign_id=campaign.pk, user=user)  # already applied
    other = UserFactory.create()
    with pytest.raises(RuntimeError):
        rolled_back(lambda: review_services.campaign_apply(campaign_id=campaign.pk, user=other))

    assert len(outbox_of(user)) == 1
    assert outbox_of(other) == []


@pytest.mark.django_db
@pytest.mark.parametrize("decision", ["approved", "rejected"])
def test_deciding_an_application_writes_an_outbox_email(decision):
    application = ApplicationFactory.create()

    review_services.application_decide(application_id=application.pk, status=decision)

    (row,) = outbox_of(application.user)
    assert row.kind == "review.application_decided"
    assert decision in row.subject and decision in row.body


@pytest.mark.django_db(transaction=True)
def test_the_outbox_email_is_queued_for_a_worker_only_after_commit():
    flush_broker()
    user = UserFactory.create()
    campaign = CampaignFactory.create()

    with pytest.raises(RuntimeError):
        rolled_back(lambda: review_services.campaign_apply(campaign_id=campaign.pk, user=user))
    assert queue_length("notifications") == 0

    review_services.campaign_apply(campaign_id=campaign.pk, user=user)
    assert queue_length("notifications") == 1
    flush_broker()


# --- delivery, in process (locmem email backend) ------------------------------------------


@pytest.mark.django_db
def test_a_notification_is_sent_once_however_often_it_is_delivered(user):
    row = notifications.notify(user_id=user.pk, kind="test", subject="Hello", body="Body")

    assert notifications.notification_deliver(notification_id=row.pk) == "sent"
    assert notifications.notification_deliver(notification_id=row.pk) == "skipped"

    assert [(m.subject, m.to) for m in mail.outbox] == [("Hello", [user.email])]
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 1)
    assert row.sent_at is not None


@pytest.mark.django_db
def test_the_sweep_sends_only_due_pending_notifications(user):
    due = notifications.notify(user_id=user.pk, kind="test", subject="due", body="")
    later = notifications.notify(user_id=user.pk, kind="test", subject="later", body="")
    Notification.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now() + timedelta(hours=1))
    sent = notifications.notify(user_id=user.pk, kind="test", subject="sent", body="")
    notifications.notification_deliver(notification_id=sent.pk)
    mail.outbox.clear()

    assert tasks.deliver_pending_notifications() == {"sent": 1}

    assert [m.subject for m in mail.outbox] == ["due"]
    assert Notification.objects.get(pk=due.pk).status == "sent"
    assert Notification.objects.get(pk=later.pk).status == "pending"


@pytest.mark.django_db
def test_an_unreachable_mail_server_is_retried_later_then_given_up(user, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    settings.NOTIFICATION_MAX_ATTEMPTS = 2
    row = notifications.notify(user_id=user.pk, kind="test", subject="Hello", body="")

    assert notifications.notification_deliver(notification_id=row.pk) == "retry"
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.next_attempt_at > timezone.now()
    assert "Connection refused" in row.last_error or "111" in row.last_error

    assert notifications.notification_deliver(notification_id=row.pk) == "failed"
    row.refresh_from_db()
    assert (row.status, row.attempts, row.sent_at) == ("failed", 2, None)


# --- delivery by real worker processes ----------------------------------------------------


def apply_through_the_api(client, campaign) -> int:
    response = client.post(f"/api/review/campaigns/{campaign.pk}/applications", {"message": "Me"}, format="json")
    assert response.status_code == 201, response.content
    return int(response.json()["id"])


def test_a_worker_sends_the_email_right_after_the_commit(celery_processes, client_for, tmp_path):
    mailbox = tmp_path / "mail"
    celery_processes.env = file_backend_env(mailbox)
    celery_processes.worker(queues="notifications", concurrency=1)  # no beat: the kick alone
    applicant, staff = UserFactory.create(), StaffFactory.create()
    campaign = CampaignFactory.create(title="Cushion foundation")

    application_id = apply_through_the_api(client_for(applicant), campaign)
    response = client_for(staff).patch(
        f"/api/review/applications/{application_id}", {"status": "approved"}, format="json"
    )
    assert response.status_code == 200

    wait_until(lambda: all(n.status == "sent" for n in outbox_of(applicant)), timeout=20, message="emails not sent")
    rows = outbox_of(applicant)
    assert [row.kind for row in rows] == ["review.application_received", "review.application_decided"]
    assert all(row.sent_at is not None for row in rows)
    text = sent_files(mailbox)
    assert f"To: {applicant.email}" in text
    assert "We received your application" in text and "Your application was approved" in text


def test_an_email_written_while_the_broker_was_down_is_sent_by_the_sweep(celery_processes, client_for, tmp_path):
    mailbox = tmp_path / "mail"
    applicant = UserFactory.create()
    campaign = CampaignFactory.create()
    with broker_unreachable():
        apply_through_the_api(client_for(applicant), campaign)  # 201 although the kick failed
    (row,) = outbox_of(applicant)
    assert row.status == "pending"
    assert Application.objects.using("default").filter(user=applicant).exists()

    celery_processes.env = file_backend_env(mailbox, NOTIFICATION_SWEEP_INTERVAL_SECONDS="1")
    celery_processes.worker(concurrency=1)
    celery_processes.beat()

    wait_until(lambda: outbox_of(applicant)[0].status == "sent", timeout=30, message="the sweep never sent it")
    assert "We received your application" in sent_files(mailbox)
