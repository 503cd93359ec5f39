"""Read-your-writes in tasks: a task carries the WAL position of the writer that queued it, and
its reads use only a replica that has replayed that position, else the primary."""

from __future__ import annotations

import json

import pytest
import redis
from django.conf import settings

from sns.models import SNSPost
from softfactory.celery import POSITION_HEADER
from softfactory.db_router import capture_position, choose_read_alias, decisions, restored_scope, routing_scope
from softfactory.replicas import parse_lsn
from tests.celery import probe_tasks
from tests.platform_core.factories import UserFactory
from tests.sns.factories import SNSPostFactory
from tests.stack import primary_insert_lsn, replay_paused, stack_state, wait_for_replay
from tests.workers import flush_broker, wait_until

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

FAR_AHEAD = 1 << 40  # a WAL distance no replica of this stack will have replayed


def queued_headers(queue: str) -> list[dict]:
    raw = redis.Redis.from_url(settings.CELERY_BROKER_URL).lrange(queue, 0, -1)
    return [json.loads(message)["headers"] for message in raw]


def test_a_task_queued_after_a_write_carries_the_writers_position():
    flush_broker()
    with routing_scope():
        before = parse_lsn(primary_insert_lsn())
        post = SNSPostFactory.create()
        probe_tasks.read_post.apply_async((post.pk, "/dev/null"))
    (headers,) = queued_headers("default")
    flush_broker()
    assert headers[POSITION_HEADER] >= before


def test_a_task_queued_without_a_write_carries_no_position():
    flush_broker()
    with routing_scope():
        probe_tasks.read_post.apply_async((1, "/dev/null"))
    (headers,) = queued_headers("default")
    flush_broker()
    assert headers[POSITION_HEADER] is None


def test_in_a_task_scope_a_position_no_replica_has_reached_sends_reads_to_the_primary():
    wait_for_replay()
    unreachable = parse_lsn(primary_insert_lsn()) + FAR_AHEAD
    before = decisions[("default", "not_caught_up")]

    with restored_scope({"required_lsn": unreachable}):
        assert choose_read_alias(SNSPost) == "default"

    assert decisions[("default", "not_caught_up")] == before + 1


def test_in_a_task_scope_a_replayed_position_lets_reads_use_a_replica():
    with routing_scope():
        SNSPostFactory.create()
        carried = capture_position()
    wait_for_replay()

    with restored_scope(carried):
        assert choose_read_alias(SNSPost) in settings.REPLICA_ALIASES


def test_a_worker_sees_the_write_of_the_request_that_queued_it(celery_processes, tmp_path):
    celery_processes.worker(queues="default", concurrency=1, include="tests.celery.probe_tasks")
    ports = stack_state()["ports"]
    reports = []
    for attempt in range(5):
        out = tmp_path / f"report-{attempt}.json"
        with routing_scope():
            post = SNSPostFactory.create(user=UserFactory.create())
            sent = capture_position()["required_lsn"]
            probe_tasks.read_post.apply_async((post.pk, str(out)))  # right after the commit
        wait_until(out.exists, timeout=20, message="the probe task did not run")
        reports.append((sent, json.loads(out.read_text())))

    for sent, report in reports:
        assert report["carried"] == sent and report["required_lsn"] == sent
        assert report["found"] is True  # the task saw the write that queued it
        if report["in_recovery"]:
            assert report["port"] in (ports["replica_1"], ports["replica_2"])
            assert parse_lsn(report["position"]) >= sent
        else:
            assert report["port"] == ports["primary"]


@pytest.mark.stack  # pauses replay on both replicas of the shared stack: run alone (-m stack)
def test_with_replay_paused_on_both_replicas_a_worker_reads_the_senders_write_from_the_primary(
    celery_processes, tmp_path
):
    celery_processes.worker(queues="default", concurrency=1, include="tests.celery.probe_tasks")
    out = tmp_path / "report.json"
    with replay_paused("replica_1", "replica_2"):
        with routing_scope():
            post = SNSPostFactory.create(user=UserFactory.create())
            sent = capture_position()["required_lsn"]
            probe_tasks.read_post.apply_async((post.pk, str(out)))
        wait_until(out.exists, timeout=20, message="the probe task did not run")
        report = json.loads(out.read_text())

    assert report["carried"] == sent
    assert report["found"] is True
    assert (report["port"], report["in_recovery"]) == (stack_state()["ports"]["primary"], False)
