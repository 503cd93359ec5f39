"""Test processes are stopped by their own process ids, never by name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.workers import CeleryProcesses, alive


@pytest.mark.django_db(transaction=True)
def test_stopping_the_test_processes_leaves_every_other_celery_process_alone(tmp_path):
    # Looks like a celery worker to `pkill -f "celery -A softfactory"`; must survive our stop.
    bystander = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", "celery", "-A", "softfactory", "worker"],
        start_new_session=True,
    )
    processes = CeleryProcesses(tmp_path)
    try:
        worker = processes.worker(concurrency=2)
        beat = processes.beat()
        ours = [worker.pid, *worker.children(), beat.pid]
        assert len(ours) == 4 and all(alive(pid) for pid in ours)

        processes.stop_all()

        assert not any(alive(pid) for pid in ours)
        assert alive(bystander.pid)
    finally:
        processes.stop_all()
        os.kill(bystander.pid, signal.SIGKILL)
        bystander.wait(timeout=10)
