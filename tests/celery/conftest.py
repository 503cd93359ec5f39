"""Fixtures for tests with real Celery processes."""

from __future__ import annotations

from tests import workers

celery_processes = workers.celery_processes  # the fixture, for every test in this directory
