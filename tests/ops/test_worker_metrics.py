"""A Celery worker started the way compose starts it (deploy/app/worker.sh): its pool processes'
metrics are served added up by deploy/app/metrics_exporter.py for Prometheus."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from softfactory.celery import app as celery_app
from tests.ops.live import ROOT, app_environment, free_port
from tests.ops.scrape import parse, total

RUNS = 3


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_task_outcomes_of_the_worker_pool_processes_are_served_added_up(tmp_path):
    port = free_port()
    queue = f"ops-worker-metrics-{uuid.uuid4().hex[:8]}"  # only this worker consumes it
    env = app_environment(
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"),
        WORKER_METRICS_PORT=str(port),
        WORKER_METRICS_ADDRESS="127.0.0.1",
        # The image has celery and python on PATH; here they are the virtualenv's.
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    )
    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen(
            ["sh", "deploy/app/worker.sh", "--loglevel=INFO", "--concurrency=2", "-Q", queue, "-n", f"{queue}@%h",
             "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        for _ in range(RUNS):
            celery_app.send_task("sns.tasks.record_post_stats", queue=queue)
        deadline = time.monotonic() + 90
        samples: dict = {}
        while time.monotonic() < deadline:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            try:
                samples = parse(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text)
            except requests.RequestException:
                samples = {}
            ran = total(
                samples, "softfactory_celery_tasks_total", task="sns.tasks.record_post_stats", outcome="success"
            )
            if ran >= RUNS:
                break
            time.sleep(0.3)
        assert ran == RUNS, (tmp_path / "worker.log").read_text()[-3000:]
        assert "softfactory_sns_posts" in samples  # the task's own gauge, from a pool process
    finally:
        os.killpg(worker.pid, signal.SIGTERM)  # the worker, its pool and the exporter: this test's session
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
        time.sleep(0.5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)  # the exporter, if it outlived the worker
