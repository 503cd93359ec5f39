"""Faults under a steady mixed load (API.md: never a 500; 503 + Retry-After only while the primary
is away), on a PRIVATE stack (tests/chaos/conftest.py) — never the shared one.

Each scenario drives >= 50 req/s for >= 30 s through gunicorn (4 sync workers) with
bench/loaddriver.py — public cached reads, token reads, session reads, logins and writes — breaks
one thing in the middle, brings it back, and prints its figures: requests, failures, p50/p99 and
what failed and why, before, during and after the fault.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from bench.loaddriver import Call, LoadDriver, Result, summarize
from tests.celery.fake_platform import FakePlatform
from tests.chaos.conftest import PrivateGunicorn, PrivateStack
from tests.workers import CeleryProcesses, wait_until

pytestmark = pytest.mark.chaos

RATE = float(os.environ.get("CHAOS_LOAD_RATE", "60"))  # requests per second
DURATION = float(os.environ.get("CHAOS_LOAD_SECONDS", "36"))  # per scenario
THREADS = 32  # enough that slow answers under CPU contention never cap the rate
MIN_RATE = 50.0
MIN_SECONDS = 30.0
FAULT_AT = 8.0  # seconds into the load
RECOVER_AT = 20.0
DEMO_PASSWORD = "softfactory-demo"  # the seeded demo users' published password
WEBHOOK_EVERYWHERE = ",".join(
    f"{p}=sns.publishers.WebhookPublisher" for p in ("twitter", "instagram", "facebook", "linkedin", "threads")
)


# --- the load -----------------------------------------------------------------------------------


@dataclass
class World:
    """What the seeded private stack holds: tokens, logins, chef and campaign ids."""

    tokens: list[str]
    emails: list[str]
    chef_ids: list[int]
    campaign_ids: list[int]


@pytest.fixture(scope="module")
def world(private_stack: PrivateStack, private_gunicorn: PrivateGunicorn) -> World:
    tokens = (private_stack.var.parent / "tokens.txt").read_text().split()
    emails = [
        row[0] for row in private_stack.sql("SELECT email FROM platform_core_user WHERE NOT is_staff ORDER BY id")
    ]
    chefs = requests.get(f"{private_gunicorn.base_url}/api/coocook/chefs?per_page=100", timeout=10).json()
    campaigns = requests.get(f"{private_gunicorn.base_url}/api/review/campaigns?per_page=100", timeout=10).json()
    world = World(
        tokens=tokens[:20],
        emails=emails[:20],
        chef_ids=[chef["id"] for chef in chefs["results"]],
        campaign_ids=[campaign["id"] for campaign in campaigns["results"]],
    )
    assert world.tokens and world.emails and world.chef_ids and world.campaign_ids
    return world


def mix(world: World, *, posts_due_now: bool = False) -> list[Call]:
    """The mixed load: mostly reads (public and per-user), some logins, sessions and writes."""

    def authed(name: str, method: str, path: str | Callable[[random.Random], str], weight: float, **kw) -> list[Call]:
        # One Call per token keeps headers static; the weight is shared among them.
        return [
            Call(name, method, path, weight=weight / len(world.tokens), headers={"Authorization": f"Token {t}"}, **kw)
            for t in world.tokens
        ]

    def post_body(rng: random.Random) -> dict:
        body = {"platform": rng.choice(["twitter", "instagram", "threads"]), "content": f"chaos {rng.random():.12f}"}
        if not posts_due_now:  # kept for later: no publishing load outside the Celery scenario
            body["scheduled_at"] = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat()
        return body

    def login_body(rng: random.Random) -> dict:
        return {"email": rng.choice(world.emails), "password": DEMO_PASSWORD}

    return [
        Call("chef list", "GET", lambda rng: f"/api/coocook/chefs?page={rng.randint(1, 2)}", weight=22),
        Call("chef detail", "GET", lambda rng: f"/api/coocook/chefs/{rng.choice(world.chef_ids)}", weight=10),
        Call("chef reviews", "GET", lambda rng: f"/api/coocook/chefs/{rng.choice(world.chef_ids)}/reviews", weight=6),
        Call("campaign list", "GET", "/api/review/campaigns", weight=10),
        Call("campaign detail", "GET", lambda rng: f"/api/review/campaigns/{rng.choice(world.campaign_ids)}", weight=5),
        *authed("me (token)", "GET", "/api/auth/me", 8),
        *authed("own bookings", "GET", "/api/coocook/bookings", 8),
        *authed("own posts", "GET", "/api/sns/posts", 5),
        *authed("schedule post", "POST", "/api/sns/schedule", 10, expected=frozenset({202}), body=post_body),
        Call("login", "POST", "/api/auth/login", weight=5, body=login_body),
        Call("me (session)", "GET", "/api/auth/me", weight=6, session_key="browser"),
        Call("health", "GET", "/healthz", weight=5),
    ]


def browser_login(world: World, base_url: str) -> Callable[[str, requests.Session], requests.Response]:
    """Log each thread's browser session in, before its first session call (recorded as "browser setup")."""

    def setup(key: str, session: requests.Session) -> requests.Response:
        email = random.choice(world.emails)
        return session.post(f"{base_url}/api/auth/login", json={"email": email, "password": DEMO_PASSWORD}, timeout=10)

    return setup


# --- running a scenario -----------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    driver: LoadDriver
    marks: dict[str, float] = field(default_factory=dict)  # monotonic times of the fault's steps

    @property
    def results(self) -> list[Result]:
        return self.driver.results

    def window(self, start: str | None = None, end: str | None = None) -> list[Result]:
        begin = self.marks[start] if start else 0.0
        finish = self.marks[end] if end else float("inf")
        return self.driver.between(begin, finish)

    def report(self, windows: list[tuple[str, str | None, str | None]]) -> None:
        total = summarize(self.results, seconds=self.driver.ended_at - self.driver.started_at)
        print(f"\n=== chaos: {self.name} ===")
        print(f"  whole run ({self.driver.ended_at - self.driver.started_at:.1f}s): {total.line()}")
        for label, start, end in windows:
            rows = self.window(start, end)
            if rows:
                span = (self.marks.get(end) if end else self.driver.ended_at) or self.driver.ended_at
                seconds = span - (self.marks[start] if start else self.driver.started_at)
                print(f"  {label}: {summarize(rows, seconds=max(seconds, 0.001)).line()}")
        steps = ", ".join(f"{mark} at {when - self.driver.started_at:.1f}s" for mark, when in self.marks.items())
        print(f"  steps: {steps}")
        print(f"  statuses: {dict(total.by_status)}")

    def assert_steady_load(self) -> None:
        seconds = self.driver.ended_at - self.driver.started_at
        assert seconds >= MIN_SECONDS, f"the load lasted {seconds:.1f}s"
        rate = len(self.results) / seconds
        assert rate >= MIN_RATE, f"the load reached {rate:.1f} req/s only"

    def assert_ok_before(self, mark: str) -> None:
        """Requests started before the fault succeeded, or were in flight when it struck (503 + Retry-After)."""
        fault = self.marks[mark]
        bad = [r for r in self.window(None, mark) if not r.ok and not (_is_retryable_503(r) and r.ended >= fault)]
        assert not bad, Counter(f"{r.name} {r.status} {r.error}" for r in bad)

    def assert_never_a_500(self) -> None:
        bad = [r for r in self.results if r.status is not None and r.status >= 500 and not _is_retryable_503(r)]
        assert not bad, f"{len(bad)} 5xx other than 503 + Retry-After: " + "; ".join(
            f"{r.name} {r.status} {r.body[:200]!r}" for r in bad[:5]
        )


def _is_retryable_503(result: Result) -> bool:
    return result.status == 503 and bool(result.retry_after)


def run_scenario(
    name: str,
    gunicorn: PrivateGunicorn,
    world: World,
    steps: list[tuple[float, str, Callable[[], None]]],
    *,
    posts_due_now: bool = False,
) -> Run:
    """Drive the load; at each step's time call it, marking `<label>` before and `<label> done` after."""
    driver = LoadDriver(
        gunicorn.base_url,
        mix(world, posts_due_now=posts_due_now),
        rate=RATE,
        duration=DURATION,
        threads=THREADS,
        timeout=15.0,
        keep_bodies=lambda call: call.name == "schedule post",
        session_setup=browser_login(world, gunicorn.base_url),
    )
    run = Run(name, driver)
    driver.start()
    try:
        for at, label, action in steps:
            delay = driver.started_at + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            run.marks[label] = time.monotonic()
            action()
            run.marks[f"{label} done"] = time.monotonic()
    finally:
        driver.join()
    return run


def wait_healthy(stack: PrivateStack, gunicorn: PrivateGunicorn, *, timeout: float = 90) -> None:
    """Before and after a scenario: the primary up, both replicas streaming, Redis up, 4 workers."""

    def healthy() -> bool:
        try:
            status, body = gunicorn.readyz()
        except requests.RequestException:
            return False
        replicas = [replica["state"] for replica in body.get("replicas", [])]
        return (
            status == 200
            and replicas == ["streaming", "streaming"]
            and body["cache"]["state"] == "up"
            and len(gunicorn.workers()) == 4
        )

    wait_until(healthy, timeout=timeout, interval=0.5, message="the private stack did not become healthy")


def cache_hits(gunicorn: PrivateGunicorn) -> float:
    total = 0.0
    for line in gunicorn.metrics().splitlines():
        if line.startswith("softfactory_cache_requests_total{") and 'result="hit"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


# --- the scenarios ----------------------------------------------------------------------------------


def test_a_stopped_replica_costs_no_request_started_after_the_stop(private_stack, private_gunicorn, world):
    wait_healthy(private_stack, private_gunicorn)
    run = run_scenario(
        "stop replica_1, then start it again",
        private_gunicorn,
        world,
        [
            (FAULT_AT, "replica_1 stop", lambda: private_stack.ctl("replica_1", "stop", mode="fast")),
            (RECOVER_AT, "replica_1 start", lambda: private_stack.ctl("replica_1", "start")),
        ],
    )
    run.report(
        [
            ("before the stop", None, "replica_1 stop"),
            ("in flight during the stop", "replica_1 stop", "replica_1 stop done"),
            ("after the stop (replica down)", "replica_1 stop done", "replica_1 start"),
            ("after the start", "replica_1 start", None),
        ]
    )
    run.assert_steady_load()
    run.assert_never_a_500()
    after_stop = run.window("replica_1 stop done")
    failed = [r for r in after_stop if not r.ok]
    assert not failed, f"{len(failed)} requests started after the stop failed: {Counter(r.name for r in failed)}"
    run.assert_ok_before("replica_1 stop")
    wait_healthy(private_stack, private_gunicorn)  # replica_1 streams again and is used again


def test_redis_down_costs_no_5xx_logins_and_sessions_keep_working_and_caching_resumes(
    private_stack, private_gunicorn, world
):
    wait_healthy(private_stack, private_gunicorn)
    hits: dict[str, float] = {}

    def stop() -> None:
        private_stack.ctl("redis", "stop")
        hits["down"] = cache_hits(private_gunicorn)

    def start() -> None:
        private_stack.ctl("redis", "start")
        hits["back"] = cache_hits(private_gunicorn)

    run = run_scenario(
        "stop Redis, then start it again",
        private_gunicorn,
        world,
        [(FAULT_AT, "redis stop", stop), (RECOVER_AT, "redis start", start)],
    )
    hits["end"] = cache_hits(private_gunicorn)
    run.report(
        [
            ("before the stop", None, "redis stop"),
            ("while Redis is down", "redis stop", "redis start done"),
            ("after the start", "redis start done", None),
        ]
    )
    print(
        f"  cache hits (all workers): {hits['down']:.0f} at the stop, {hits['back']:.0f} at the start, {hits['end']:.0f} at the end"
    )
    run.assert_steady_load()
    assert not [r for r in run.results if r.status is not None and r.status >= 500], "a 5xx while Redis was down"
    outage = run.window("redis stop done", "redis start")
    for name in ("login", "me (session)", "me (token)", "schedule post", "chef list"):
        calls = [r for r in outage if r.name == name]
        assert calls, f"no {name} while Redis was down"
        assert all(r.ok for r in calls), f"{name} failed while Redis was down: {Counter(r.status for r in calls)}"
    assert all(r.ok for r in run.results), Counter(r.name for r in run.results if not r.ok)
    assert hits["back"] - hits["down"] <= 2, "cache hits while Redis was down?"  # 2: hits in flight at the stop
    assert hits["end"] > hits["back"], "caching did not resume after Redis came back"
    assert private_stack.redis(0).dbsize() > 0  # entries are being written again


def test_a_primary_restart_answers_503_with_retry_after_at_worst_and_nothing_fails_after(
    private_stack, private_gunicorn, world
):
    wait_healthy(private_stack, private_gunicorn)
    run = run_scenario(
        "restart the primary",
        private_gunicorn,
        world,
        [(FAULT_AT, "primary restart", lambda: private_stack.ctl("primary", "restart", mode="fast"))],
    )
    run.report(
        [
            ("before the restart", None, "primary restart"),
            ("during the restart", "primary restart", "primary restart done"),
            ("after the primary returned", "primary restart done", None),
        ]
    )
    run.assert_steady_load()
    run.assert_never_a_500()
    during = [r for r in run.window("primary restart", "primary restart done") if not r.ok]
    assert all(_is_retryable_503(r) for r in during), Counter(f"{r.name} {r.status} {r.error}" for r in during)
    after = [r for r in run.window("primary restart done") if not r.ok]
    assert not after, (
        f"{len(after)} failures after the primary returned: {Counter(f'{r.name} {r.status}' for r in after)}"
    )
    run.assert_ok_before("primary restart")
    wait_healthy(private_stack, private_gunicorn)


def test_a_killed_gunicorn_worker_is_replaced_and_costs_at_most_its_request_in_flight(
    private_stack, private_gunicorn, world
):
    wait_healthy(private_stack, private_gunicorn)
    before = private_gunicorn.workers()
    killed: dict[str, float] = {}

    def kill_one() -> None:
        victim = random.Random(7).choice(before)
        os.kill(victim, signal.SIGKILL)
        killed["pid"] = victim
        killed["at"] = time.monotonic()

    def replaced() -> None:
        wait_until(
            lambda: len(private_gunicorn.workers()) == 4 and killed["pid"] not in private_gunicorn.workers(),
            timeout=15,
            interval=0.05,
            message="gunicorn did not replace the killed worker",
        )

    run = run_scenario(
        "kill -9 one gunicorn worker",
        private_gunicorn,
        world,
        [(FAULT_AT + 2, "worker kill", kill_one), (FAULT_AT + 2.001, "worker replaced", replaced)],
    )
    run.report(
        [
            ("before the kill", None, "worker kill"),
            ("until the replacement", "worker kill", "worker replaced done"),
            ("after the replacement", "worker replaced done", None),
        ]
    )
    after = private_gunicorn.workers()
    print(f"  workers before {before}, killed {killed['pid']}, after {after}; master {private_gunicorn.pid} unchanged")
    run.assert_steady_load()
    run.assert_never_a_500()
    assert private_gunicorn.process is not None and private_gunicorn.process.poll() is None
    assert len(after) == 4 and killed["pid"] not in after and len(set(after) - set(before)) == 1
    failed = [r for r in run.results if not r.ok]
    # A sync worker serves one request at a time: at most that one is lost, and it was in flight.
    assert len(failed) <= 1, Counter(f"{r.name} {r.status} {r.error}" for r in failed)
    assert all(r.started <= killed["at"] <= r.ended + 0.5 for r in failed)


def test_a_killed_celery_worker_during_publishing_loses_no_post_and_publishes_none_twice(
    private_stack, private_gunicorn, world, tmp_path
):
    wait_healthy(private_stack, private_gunicorn)
    platform = FakePlatform(delay=(0.05, 0.3), seed=11).start()
    processes = CeleryProcesses(tmp_path)
    celery_env = {
        **private_stack.env,
        "REDIS_URL": private_stack.env["REDIS_URL"],
        "REDIS_SESSIONS_URL": re.sub(r"/0$", "/1", private_stack.env["REDIS_URL"]),
        "CELERY_BROKER_URL": re.sub(r"/0$", "/2", private_stack.env["REDIS_URL"]),
        "SNS_PUBLISHERS": WEBHOOK_EVERYWHERE,
        "SNS_WEBHOOK_URL": platform.url,
        "SNS_LEASE_SECONDS": "12",
        "CELERY_TASK_SOFT_TIME_LIMIT": "6",
        "CELERY_TASK_TIME_LIMIT": "8",
        "SNS_PUBLISH_TIMEOUT_SECONDS": "4",
        "CELERY_VISIBILITY_TIMEOUT": "60",
        "SNS_BACKOFF_BASE": "0.5",
        "SNS_BACKOFF_CAP": "2",
        "DATABASE_POOL_DISABLED": "True",
    }
    processes.env = celery_env
    started_after = private_stack.sql("SELECT coalesce(max(id), 0) FROM sns_snspost")[0][0]
    victims: dict[str, object] = {}
    try:
        processes.worker("first", concurrency=2)
        processes.beat()

        def kill_worker() -> None:
            wait_until(lambda: platform.running_calls(), timeout=10, interval=0.01, message="no call in flight")
            first = processes.started[0]
            first.children()  # remember the pool processes: the kill takes the whole process group
            victims["calls in flight"] = len(platform.running_calls())
            victims["pids"] = first.kill()

        run = run_scenario(
            "kill -9 the Celery worker while posts are published",
            private_gunicorn,
            world,
            [
                (FAULT_AT + 4, "celery kill", kill_worker),
                (FAULT_AT + 7, "celery restart", lambda: processes.worker("second", concurrency=2)),
            ],
            posts_due_now=True,
        )
        scheduled = sorted({_post_id(r) for r in run.results if r.name == "schedule post" and r.ok})

        def settled() -> bool:
            rows = private_stack.sql(
                "SELECT status, count(*) FROM sns_snspost WHERE id > %s GROUP BY status", (started_after,)
            )
            return {status for status, _ in rows} <= {"published", "failed", "cancelled"}

        wait_until(settled, timeout=120, interval=1, message="posts still not final 120 s after the load")
        statuses = dict(
            private_stack.sql(
                "SELECT status, count(*) FROM sns_snspost WHERE id > %s GROUP BY status", (started_after,)
            )
        )
        ours = [call for call in platform.calls if call.post_id is not None and int(call.post_id) > started_after]
        per_post = Counter(int(call.post_id) for call in ours if call.outcome == "accepted")
        calls = Counter(int(call.post_id) for call in ours)
    finally:
        processes.stop_all()
        platform.stop()
    run.report(
        [
            ("before the kill", None, "celery kill"),
            ("worker down", "celery kill", "celery restart done"),
            ("after the new worker", "celery restart done", None),
        ]
    )
    retried = sum(1 for n in calls.values() if n > 1)
    print(
        f"  posts scheduled {len(scheduled)}; final statuses {statuses}; publications accepted "
        f"{sum(per_post.values())} for {len(per_post)} posts; posts called more than once {retried} "
        f"(same idempotency key); killed pids {victims.get('pids')} with {victims.get('calls in flight')} calls in flight"
    )
    run.assert_steady_load()
    assert all(r.ok for r in run.results), Counter(f"{r.name} {r.status}" for r in run.results if not r.ok)
    assert scheduled and len(scheduled) == sum(statuses.values())
    assert statuses == {"published": len(scheduled)}, statuses  # none lost, none failed
    assert set(per_post) == set(scheduled)
    assert max(per_post.values()) == 1, "a post was published twice"
    assert victims.get("pids"), "the worker was not killed"


def _post_id(result: Result) -> int:
    return int(json.loads(result.body)["id"])


def test_the_private_stack_is_not_the_shared_one(private_stack):
    from tests.stack import stack_state

    assert not set(private_stack.ports.values()) & set(stack_state()["ports"].values())
    assert Path(private_stack.var).resolve() != (Path(__file__).resolve().parents[2] / "var").resolve()
