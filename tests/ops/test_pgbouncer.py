"""PgBouncer in front of the primary: the local stack starts it, the API runs through it in
transaction pooling, and migrate and the seeders still connect directly."""

from __future__ import annotations

import subprocess
import sys
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
import requests
from django.db import connections

from tests.ops.live import ROOT, app_environment, database_url, free_port, live_gunicorn
from tests.ops.scrape import parse, total
from tests.stack import run_stack, stack_state


def pool_url_for_test_database(pool_url: str) -> str:
    parts = urlsplit(pool_url)
    return urlunsplit(parts._replace(path="/" + connections["default"].settings_dict["NAME"]))


def pgbouncer_admin(sql: str) -> list[dict]:
    conn = psycopg2.connect(
        host="127.0.0.1", port=stack_state()["ports"]["pgbouncer"], user="postgres", dbname="pgbouncer"
    )
    conn.autocommit = True  # the admin console has no transactions
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            columns = [c.name for c in cur.description]
            return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    finally:
        conn.close()


@pytest.fixture
def pooled_test_database():
    """The test database's name; afterwards PgBouncer closes its server connections to it, or
    pytest-django could not drop the database at the end of the session."""
    database = connections["default"].settings_dict["NAME"]
    yield database
    pgbouncer_admin_command(f"KILL {database}")
    pgbouncer_admin_command(f"RESUME {database}")


def pgbouncer_admin_command(sql: str) -> None:
    conn = psycopg2.connect(
        host="127.0.0.1", port=stack_state()["ports"]["pgbouncer"], user="postgres", dbname="pgbouncer"
    )
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def transactions_through_pool(database: str) -> int:
    return sum(int(row["total_xact_count"]) for row in pgbouncer_admin("SHOW STATS") if row["database"] == database)


def test_the_stack_records_pgbouncer_and_prints_its_url(stack_pool):
    state = stack_state()
    assert state["pgbouncer"] is True
    assert int(urlsplit(stack_pool["DATABASE_POOL_URL"]).port) == state["ports"]["pgbouncer"]
    assert stack_pool["DATABASE_POOL_URL"].endswith("/softfactory")
    assert int(stack_pool["DATABASE_POOL_LIMIT"]) == 50  # min(40 + 10, max_db_connections 50)
    pools = [row for row in pgbouncer_admin("SHOW POOLS") if row["database"] == "softfactory"]
    assert {row["pool_mode"] for row in pools} <= {"transaction"}
    # `env` leaves the pool out: only the web launcher gets it, tests and migrate connect directly.
    assert "DATABASE_POOL_URL" not in run_stack("env").stdout
    assert run_stack("status").returncode == 0


@pytest.mark.django_db(transaction=True)
def test_the_api_runs_through_pgbouncer_in_transaction_pooling(stack_pool, pooled_test_database, tmp_path):
    database = pooled_test_database
    before = transactions_through_pool(database)
    with live_gunicorn(
        tmp_path,
        workers=2,
        DATABASE_POOL_URL=pool_url_for_test_database(stack_pool["DATABASE_POOL_URL"]),
        DATABASE_POOL_LIMIT=stack_pool["DATABASE_POOL_LIMIT"],
    ) as server:
        email = f"pool-{uuid.uuid4().hex[:8]}@example.com"
        body = {"email": email, "password": "a-Long-enough-pass-42", "name": "Pooled"}
        assert requests.post(f"{server.url}/api/auth/register", json=body, timeout=10).status_code == 201
        assert requests.post(f"{server.url}/api/auth/register", json=body, timeout=10).status_code == 400
        login = requests.post(f"{server.url}/api/auth/login", json=body, timeout=10)
        assert login.status_code == 200
        headers = {"Authorization": f"Token {login.json()['token']}"}
        me = requests.get(f"{server.url}/api/auth/me", headers=headers, timeout=10)
        assert me.status_code == 200
        assert me.json()["email"] == email
        for _ in range(10):
            assert requests.get(f"{server.url}/api/review/campaigns", timeout=10).status_code == 200
        assert requests.post(f"{server.url}/api/auth/logout", headers=headers, timeout=10).status_code == 204
        assert requests.get(f"{server.url}/api/auth/me", headers=headers, timeout=10).status_code == 401
        samples = parse(requests.get(f"{server.url}/metrics", timeout=10).text)
    # The writes (register, login, logout) went through PgBouncer, one pooled transaction each or more.
    assert transactions_through_pool(database) - before >= 3
    assert total(samples, "softfactory_db_pool_limit", alias="default") == int(stack_pool["DATABASE_POOL_LIMIT"])
    assert total(samples, "softfactory_db_up", alias="default") == 1


def settings_in(env: dict[str, str], argv: list[str], expression: str) -> str:
    """Evaluate a settings expression in a fresh process started as `manage.py <argv>` would be."""
    code = (
        f"import sys; sys.argv = {argv!r}; import django, os; "
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'softfactory.settings'; django.setup(); "
        f"from django.conf import settings; print({expression})"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.django_db
def test_web_processes_use_the_pool_without_server_side_cursors_and_migrate_and_seeders_do_not(stack_pool):
    pool = pool_url_for_test_database(stack_pool["DATABASE_POOL_URL"])
    env = app_environment(DATABASE_POOL_URL=pool)
    bouncer, primary = str(stack_state()["ports"]["pgbouncer"]), str(stack_state()["ports"]["primary"])
    web = (
        "settings.DATABASES['default']['PORT'], settings.DATABASES['default'].get('DISABLE_SERVER_SIDE_CURSORS', False)"
    )
    assert settings_in(env, ["gunicorn"], web) == f"{bouncer} True"
    for command in ("migrate", "seed", "seed_coocook", "seed_sns", "seed_review", "check_indexes"):
        assert settings_in(env, ["manage.py", command], web) == f"{primary} False", command
    off = {**env, "DATABASE_POOL_DISABLED": "True"}
    assert settings_in(off, ["gunicorn"], web) == f"{primary} False"


@pytest.mark.django_db
def test_migrate_connects_directly_even_when_the_pool_is_unreachable():
    # A pool URL where nothing listens: a command using it would fail to connect.
    dead_pool = urlunsplit(urlsplit(database_url("default"))._replace(netloc=f"softfactory@127.0.0.1:{free_port()}"))
    env = app_environment(DATABASE_POOL_URL=dead_pool)
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--plan"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert migrate.returncode == 0, migrate.stderr
    probe = "from django.db import connection; connection.ensure_connection()"
    shell = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert shell.returncode != 0  # the control: an ordinary command does go through the (dead) pool
    assert "connection" in shell.stderr.lower()
