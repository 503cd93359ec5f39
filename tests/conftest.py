"""Shared fixtures. The suite runs on the local stack only (tests/README.md says why)."""

from __future__ import annotations

import contextlib

import pytest
from django.conf import settings
from django.db import connections
from django_redis import get_redis_connection
from redis.exceptions import RedisError
from rest_framework.test import APIClient

from softfactory import replicas
from tests import stack


def pytest_configure(config: pytest.Config) -> None:
    # Password hashing is not under test; Argon2 would make every user fixture slow.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Chaos scenarios take minutes: `make chaos` (pytest -m chaos) runs them, `make test` doesn't.
    if "chaos" in (config.option.markexpr or ""):
        return
    chaos = [item for item in items if item.get_closest_marker("chaos")]
    if chaos:
        config.hook.pytest_deselected(items=chaos)
        items[:] = [item for item in items if not item.get_closest_marker("chaos")]


def _refuse(reason: str) -> None:
    pytest.exit(f"refusing to run: {reason}. Start the local stack with `make test` (or scripts/stack start).", 2)


@pytest.fixture(scope="session", autouse=True)
def real_stack() -> None:
    """The suite must run against the stack's own PostgreSQL primary, replicas and Redis."""
    if connections["default"].vendor != "postgresql":
        _refuse("the default database is not PostgreSQL")
    if not settings.REPLICA_ALIASES:
        _refuse("no replica aliases are configured (DATABASE_REPLICA_URLS)")
    seen_ports: dict[int, str] = {}
    for alias in ["default", *settings.REPLICA_ALIASES]:
        try:
            conn = replicas.connect(alias)
        except Exception as exc:
            _refuse(f"{alias} is unreachable ({exc})")
        with conn.cursor() as cursor:
            cursor.execute("SELECT inet_server_port(), pg_is_in_recovery()")
            port, in_recovery = cursor.fetchone()
        conn.close()
        if alias != "default" and not in_recovery:
            _refuse(f"{alias} (port {port}) is not a server in recovery")
        if alias == "default" and in_recovery:
            _refuse(f"default (port {port}) is in recovery, not a primary")
        if port in seen_ports:
            _refuse(f"{alias} and {seen_ports[port]} are the same server (port {port})")
        seen_ports[port] = alias
    info = get_redis_connection("default").info("server")
    expected = stack.stack_state()["ports"]["redis"]
    if int(info["tcp_port"]) != expected or str(stack.stack_dir()) not in str(info.get("config_file", "")):
        _refuse(f"the cache is not the stack's Redis (port {info['tcp_port']}, config {info.get('config_file')})")


@pytest.fixture(autouse=True)
def clean_redis() -> None:
    """Every test starts with empty cache and session databases and a closed cache breaker."""
    from softfactory.cache import reset_for_tests

    reset_for_tests()
    for alias in ("default", "sessions"):
        # A test that stopped Redis on purpose brings it back itself.
        with contextlib.suppress(RedisError):
            get_redis_connection(alias).flushdb()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db):
    from tests.platform_core.factories import UserFactory

    return UserFactory()


@pytest.fixture
def other_user(db):
    from tests.platform_core.factories import UserFactory

    return UserFactory()


@pytest.fixture
def staff_user(db):
    from tests.platform_core.factories import StaffFactory

    return StaffFactory()


@pytest.fixture
def client_for():
    """`client_for(user)` -> an APIClient sending that user's fresh token; None -> anonymous."""
    from tests.platform_core.factories import token_for

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
        return client

    return make
