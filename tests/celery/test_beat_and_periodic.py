"""Celery settings, the beat schedule synced into the database, and the periodic jobs."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.backends.cached_db import SessionStore
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from coocook import tasks as coocook_tasks
from coocook.models import Booking
from platform_core import tasks as platform_tasks
from platform_core.models import IdempotencyRecord
from review import tasks as review_tasks
from review.models import Campaign
from softfactory.celery import app
from tests.coocook.factories import BookingFactory
from tests.platform_core.factories import UserFactory
from tests.review.factories import CampaignFactory
from tests.stack import wait_for_replay
from tests.workers import wait_until

PERIODIC = {
    "sns-dispatch-due-posts": "sns.tasks.dispatch_due_posts",
    "sns-record-post-stats": "sns.tasks.record_post_stats",
    "coocook-complete-finished-bookings": "coocook.tasks.complete_finished_bookings",
    "review-close-campaigns-past-deadline": "review.tasks.close_campaigns_past_deadline",
    "platform-clear-expired-sessions": "platform_core.tasks.clear_expired_sessions",
    "platform-purge-idempotency-records": "platform_core.tasks.purge_idempotency_records",
    "platform-deliver-pending-notifications": "platform_core.tasks.deliver_pending_notifications",
}


def test_the_celery_settings_keep_the_delivery_guarantees():
    conf = app.conf
    assert conf.broker_url.startswith("redis://")
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.result_backend is None and conf.task_ignore_result is True
    # publish call < soft limit <= hard limit < claim lease < visibility timeout
    assert settings.SNS_PUBLISH_TIMEOUT_SECONDS < conf.task_soft_time_limit <= conf.task_time_limit
    assert conf.task_time_limit < settings.SNS_LEASE_SECONDS
    assert conf.broker_transport_options["visibility_timeout"] >= settings.SNS_LEASE_SECONDS * 4
    assert {queue.name for queue in conf.task_queues} == {"dispatch", "publish", "notifications", "default"}
    assert app.amqp.router.route({}, "sns.tasks.dispatch_due_posts")["queue"].name == "dispatch"
    assert app.amqp.router.route({}, "sns.tasks.publish_post")["queue"].name == "publish"
    assert app.amqp.router.route({}, "sns.tasks.publish_posts")["queue"].name == "publish"
    assert app.amqp.router.route({}, "platform_core.tasks.deliver_notification")["queue"].name == "notifications"
    assert app.amqp.router.route({}, "coocook.tasks.complete_finished_bookings")["queue"].name == "default"
    assert conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"
    assert {name: entry["task"] for name, entry in conf.beat_schedule.items()} == PERIODIC
    assert conf.beat_schedule["sns-dispatch-due-posts"]["schedule"] <= 2


def test_every_periodic_task_is_a_registered_task():
    app.loader.import_default_modules()
    assert set(PERIODIC.values()) <= set(app.tasks)


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_beat_writes_the_schedule_into_the_database_and_keeps_an_entry_paused_in_the_admin(celery_processes):
    assert not PeriodicTask.objects.using("default").filter(name__in=PERIODIC).exists()  # a fresh database

    first = celery_processes.beat("first")
    tasks_in_db = {task.name: task for task in PeriodicTask.objects.using("default").filter(name__in=PERIODIC)}
    assert {name: task.task for name, task in tasks_in_db.items()} == PERIODIC
    assert tasks_in_db["sns-dispatch-due-posts"].interval.every <= 2
    assert all(task.enabled for task in tasks_in_db.values())

    # An operator pauses a job in the admin; a beat restart must not switch it back on.
    admin = UserFactory.create(is_staff=True, is_superuser=True)
    browser = Client()
    browser.force_login(admin)
    wait_for_replay()  # the admin reads a replica
    changelist = browser.get("/admin/django_celery_beat/periodictask/")
    assert changelist.status_code == 200
    assert "coocook-complete-finished-bookings" in changelist.content.decode()
    PeriodicTask.objects.filter(name="coocook-complete-finished-bookings").update(enabled=False)
    first.stop()
    celery_processes.beat("second")

    assert PeriodicTask.objects.using("default").get(name="coocook-complete-finished-bookings").enabled is False
    assert PeriodicTask.objects.using("default").get(name="sns-dispatch-due-posts").enabled is True


def test_beat_sends_the_dispatcher_every_second_and_readyz_shows_its_age(celery_processes, api_client):
    assert api_client.get("/readyz").json()["scheduler"] == {"last_dispatch_age_seconds": None}

    celery_processes.worker(queues="dispatch", concurrency=1)
    beat = celery_processes.beat()
    wait_until(
        lambda: (api_client.get("/readyz").json()["scheduler"]["last_dispatch_age_seconds"] or 99) < 2,
        timeout=15,
        message="no recent dispatcher run reported",
    )
    started = time.monotonic()
    wait_until(
        lambda: beat.log().count("Sending due task sns-dispatch-due-posts") >= 4,
        timeout=15,
        message="beat does not send the dispatcher every second",
    )
    assert time.monotonic() - started < 8


# --- the periodic jobs ------------------------------------------------------------------


@pytest.mark.django_db
def test_finished_bookings_are_marked_completed():
    finished = BookingFactory.create(finished=True)
    upcoming = BookingFactory.create()
    cancelled = BookingFactory.create(finished=True, status=Booking.Status.CANCELLED)

    assert coocook_tasks.complete_finished_bookings() == 1

    statuses = dict(Booking.objects.filter(pk__in=[finished.pk, upcoming.pk, cancelled.pk]).values_list("pk", "status"))
    assert statuses == {finished.pk: "completed", upcoming.pk: "confirmed", cancelled.pk: "cancelled"}


@pytest.mark.django_db
def test_campaigns_close_at_their_deadline():
    past = CampaignFactory.create(deadline=timezone.now() - timedelta(minutes=1))
    open_ = CampaignFactory.create()
    draft = CampaignFactory.create(status=Campaign.Status.DRAFT, deadline=timezone.now() - timedelta(minutes=1))

    assert review_tasks.close_campaigns_past_deadline() == 1

    statuses = dict(Campaign.objects.filter(pk__in=[past.pk, open_.pk, draft.pk]).values_list("pk", "status"))
    assert statuses == {past.pk: "closed", open_.pk: "active", draft.pk: "draft"}


@pytest.mark.django_db
def test_expired_sessions_are_cleared():
    alive, expired = SessionStore(), SessionStore()
    alive["n"], expired["n"] = 1, 2
    alive.create()
    expired.set_expiry(-60)
    expired.create()

    platform_tasks.clear_expired_sessions()

    assert set(Session.objects.values_list("session_key", flat=True)) == {alive.session_key}


@pytest.mark.django_db
def test_idempotency_records_older_than_a_day_are_purged(user):
    def record(key: str, age: timedelta) -> IdempotencyRecord:
        return IdempotencyRecord.objects.create(
            user=user,
            method="POST",
            path="/api/sns/schedule",
            key=key,
            request_hash="0" * 64,
            response_status=202,
            response_body={},
            created_at=timezone.now() - age,
        )

    record("old", timedelta(hours=25))
    record("young", timedelta(hours=23))

    assert platform_tasks.purge_idempotency_records() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["young"]
