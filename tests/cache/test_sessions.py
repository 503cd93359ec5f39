"""Sessions: `cached_db` on its own Redis database. Losing the cached copy, a session cache that is
unreachable, another app instance or a restarted one: nobody is logged out, logins keep working."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from tests.cache.servers import closed_port_url, with_cache_location
from tests.live import ROOT, _stop, _wait_until_healthy, free_port, server_environment
from tests.platform_core.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def login(client: APIClient, user) -> None:
    response = client.post("/api/auth/login", {"email": user.email, "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    assert django_settings.SESSION_COOKIE_NAME in response.cookies


def test_sessions_live_in_their_own_redis_database_with_the_cached_db_engine():
    assert django_settings.SESSION_ENGINE == "django.contrib.sessions.backends.cached_db"
    assert django_settings.SESSION_CACHE_ALIAS == "sessions"
    cache_db = get_redis_connection("default").connection_pool.connection_kwargs["db"]
    sessions_db = get_redis_connection("sessions").connection_pool.connection_kwargs["db"]
    assert sessions_db != cache_db  # flushing the response cache never touches sessions
    browser = APIClient()
    login(browser, UserFactory())
    assert get_redis_connection("sessions").dbsize() >= 1
    assert Session.objects.count() == 1  # the database row is the truth


def test_a_session_survives_losing_its_cached_copy():
    browser = APIClient()
    login(browser, UserFactory())
    assert browser.get("/api/auth/me").status_code == 200
    get_redis_connection("sessions").flushdb()
    assert browser.get("/api/auth/me").status_code == 200
    assert get_redis_connection("sessions").dbsize() >= 1  # refilled from the database


def test_logins_and_sessions_work_while_the_session_cache_is_unreachable(settings):
    with_cache_location(settings, "sessions", closed_port_url(db=8))
    user = UserFactory()
    browser = APIClient()
    login(browser, user)
    assert browser.get("/api/auth/me").status_code == 200
    assert browser.get("/api/auth/me").json()["email"] == user.email
    assert browser.post("/api/auth/logout").status_code == 204
    assert browser.get("/api/auth/me").status_code in (401, 403)


@contextmanager
def app_instance(workdir: Path) -> Iterator[str]:
    """A separate app instance: its own gunicorn (two worker processes) on the test database."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    workdir.mkdir(parents=True, exist_ok=True)
    # One deployment: the same SECRET_KEY as this test process (sessions are signed with it).
    env = {**server_environment(port, workdir), "GUNICORN_WORKERS": "2", "SECRET_KEY": django_settings.SECRET_KEY}
    log = workdir / "gunicorn.log"
    gunicorn = Path(sys.executable).parent / "gunicorn"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(gunicorn), "softfactory.wsgi", "-c", "gunicorn.conf.py", "--no-control-socket"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_healthy(process, base_url, log)
        yield base_url
    finally:
        _stop(process)


def test_a_session_works_across_app_instances_and_restarts(tmp_path):
    user = UserFactory()
    session = requests.Session()
    with app_instance(tmp_path / "first") as first:
        response = session.post(f"{first}/api/auth/login", json={"email": user.email, "password": PASSWORD}, timeout=10)
        assert response.status_code == 200
        for _ in range(6):  # whichever worker process answers
            assert session.get(f"{first}/api/auth/me", timeout=10).json()["email"] == user.email
    get_redis_connection("sessions").flushdb()  # and the cached copies are gone too
    with app_instance(tmp_path / "second") as second:  # the app restarted: new processes
        for _ in range(6):
            assert session.get(f"{second}/api/auth/me", timeout=10).status_code == 200
    in_process = APIClient()  # a third instance: this test process
    in_process.cookies[django_settings.SESSION_COOKIE_NAME] = session.cookies[django_settings.SESSION_COOKIE_NAME]
    assert in_process.get("/api/auth/me").json()["email"] == user.email
