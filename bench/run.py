"""`make bench`: SoftFactory's reproducible benchmark, on a private stack, in one run.

    bench/.venv/bin/python bench/run.py [--scale small|full] [--keep-stack] [--no-profile]

What it does, in order (docs/PERFORMANCE.md explains how to read the results):

1. Starts a fresh private stack (`SOFTFACTORY_VAR=var/bench scripts/stack`: its own PostgreSQL
   primary + 2 streaming replicas + Redis on their own ports; the shared stack is never touched),
   migrates, seeds users with API tokens, copies that database for the 10k-chef comparison, then
   seeds the default scale (100k chefs, 1M bookings, 100k campaigns, 1M posts) and times it.
2. EXPLAIN (ANALYZE, BUFFERS) of each hot query on a replica: does it use its index?
3. gunicorn with production settings (DEBUG=False, real Redis, both replicas, gunicorn.conf.py),
   with the response cache switched off: the control endpoint (/healthz) and each hot endpoint
   uncached, at fixed concurrency with a keep-alive client, as a ratio to the control; queries per
   list request at page sizes 1 and 100; the uncached chef list again on the 10k-chef copy.
4. gunicorn as deployed (cache on): each hot endpoint cached, the per-user lists, logins, then
   the locust mix with 1,000 users (1-3 s think time) next to one Celery worker and beat: req/s,
   p50/p95/p99, errors, database query p99, cache hit ratio, share of GET reads on replicas,
   queries per request, highest replica lag, Celery success rate.
5. 10,000 due SNS posts drained by one Celery worker process against a local webhook server.
6. The other gunicorn worker class (sync vs gthread): the same control, endpoints and a shorter mix,
   next to the default's own shorter mix.
7. A concurrent index build on the largest table while writers run, next to a plain CREATE INDEX.
8. Writes bench/results/<date>[-small].json, .md and .png, prints the summary, stops the stack.

Every figure comes from this run. Absolute numbers depend on the machine (and on whatever else
runs on it); ratios measured in one run are what to compare.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
VAR = ROOT / "var" / "bench"
WORK = VAR / "work"
STACK = ROOT / "scripts" / "stack"
APP_BIN = ROOT / ".venv" / "bin"
TOOLS_BIN = Path(sys.executable).parent  # bench/.venv/bin: locust, py-spy
LOCUSTFILE = BENCH / "locustfile.py"
APPSIDE = BENCH / "appside.py"
MAIN_DB = "softfactory"
SMALL_DB = "softfactory_10k"
SEED_PASSWORD = "softfactory-demo"  # noqa: S105 - the seeder's published demo password
# The environment variable that switches the response cache off for the "uncached" passes.
UNCACHED_ENV = {"RESPONSE_CACHE_ENABLED": "False"}
# The reference figures (same machine, one run): a plain Django view ~6.9k req/s, a naive
# DRF ListAPIView over 100k chefs with a COUNT(*) per request ~208 req/s.
REFERENCE_PLAIN_DJANGO_RPS = 6900.0
REFERENCE_NAIVE_LIST_RPS = 208.0
CELERY_QUEUES = "dispatch,publish,notifications,default"
MIX_RAMP_SECONDS = int(os.environ.get("BENCH_MIX_RAMP_SECONDS", "60"))
# The one Celery worker of the mix and the drain: pool and concurrency (at most 16), BENCH_WORKER_POOL=pool:n.
_pool = os.environ.get("BENCH_WORKER_POOL", "prefork:4").split(":")
WORKER_POOL = (_pool[0], int(_pool[1]))
PLATFORMS = ("twitter", "instagram", "facebook", "linkedin", "threads")
STARTED = time.monotonic()


@dataclass(frozen=True)
class Scale:
    seed: str
    users: int
    growth_chefs: int  # the smaller chef table the uncached list is compared against
    growth_bookings: int
    endpoint_seconds: int
    concurrency: int
    mix_users: int
    mix_seconds: int
    compare_mix_seconds: int
    drain_posts: int


SCALES = {
    "small": Scale("small", 1_000, 10_000, 20_000, 3, 10, 1_000, 15, 0, 1_000),
    "full": Scale("full", 10_000, 10_000, 100_000, 15, 10, 1_000, 120, 60, 10_000),
}


def log(message: str) -> None:
    load = os.getloadavg()[0]
    print(f"[bench {time.monotonic() - STARTED:6.0f}s load {load:5.2f}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the private stack ---------------------------------------------------------------------


def stack(*args: str) -> str:
    env = {**os.environ, "SOFTFACTORY_VAR": str(VAR)}
    result = subprocess.run([str(STACK), *args], env=env, capture_output=True, text=True, check=False, cwd=ROOT)
    if result.returncode != 0:
        raise RuntimeError(f"scripts/stack {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


class Stack:
    """Addresses of the private stack and the environment every app process gets."""

    def __init__(self, exports: str) -> None:
        values = dict(
            line.removeprefix("export ").split("=", 1) for line in exports.splitlines() if line.startswith("export ")
        )
        self.database_url = values["DATABASE_URL"]
        self.replica_urls = values["DATABASE_REPLICA_URLS"].split(",")
        self.redis_url = values["REDIS_URL"]
        self.secret_key = (
            (ROOT / "var" / "secret_key").read_text().strip() if (ROOT / "var" / "secret_key").exists() else ""
        )
        self.secret_key = self.secret_key or "bench-" + os.urandom(24).hex()

    @staticmethod
    def _on(url: str, db: str) -> str:
        return url.rsplit("/", 1)[0] + "/" + db

    def dsn(self, db: str = MAIN_DB, server: int = 0) -> str:
        """server 0 is the primary, 1..n the replicas."""
        return self._on(self.database_url if server == 0 else self.replica_urls[server - 1], db)

    def env(
        self, *, db: str = MAIN_DB, redis_db: int = 0, extra: dict[str, str] | None = None, **more: str
    ) -> dict[str, str]:
        # Nothing of the caller's environment may point an app process at another stack.
        prefixes = ("DATABASE_", "REDIS_", "CELERY_", "GUNICORN_", "PROMETHEUS_", "SNS_", "CACHE_", "RESPONSE_CACHE")
        env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes) and k != "VIRTUAL_ENV"}
        env.update(
            DATABASE_URL=self._on(self.database_url, db),
            DATABASE_REPLICA_URLS=",".join(self._on(url, db) for url in self.replica_urls),
            DATABASE_ADMIN_URL=self._on(self.database_url, "postgres").replace("softfactory@", "postgres@"),
            REDIS_URL=self.redis_url.rsplit("/", 1)[0] + f"/{redis_db}",
            SECRET_KEY=self.secret_key,
            DEBUG="False",
            LOG_LEVEL="WARNING",
            SOFTFACTORY_STACK=str(VAR),
            PYTHONUNBUFFERED="1",
        )
        env.update(extra or {})
        env.update(more)
        return env


def sql(dsn: str, query: str, params: Any = None, *, fetch: bool = True) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            return list(cur.fetchall()) if fetch and cur.description else []
    finally:
        conn.close()


def run_app(args: list[str], env: dict[str, str], *, label: str, show: bool = True) -> str:
    """A Django command with the app's virtualenv; its output is streamed as progress."""
    process = subprocess.Popen(
        [str(APP_BIN / "python"), *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if show and not line.startswith("{"):
            print(f"    {label} | {line.rstrip()}", file=sys.stderr, flush=True)
    if process.wait() != 0:
        raise RuntimeError(f"{label} failed:\n{''.join(lines[-40:])}")
    return "".join(lines)


def last_json(output: str) -> Any:
    return json.loads(output.strip().splitlines()[-1])


# --- processes this run starts (and stops, by their own ids) -------------------------------


class Process:
    def __init__(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.log_path = WORK / f"{name}.log"
        with self.log_path.open("ab") as out:
            self.popen = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 30) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # Our own process group (start_new_session): the process and its children only.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # pool children left behind by a crash


RUNNING: list[Process] = []


def start(name: str, command: list[str], env: dict[str, str]) -> Process:
    process = Process(name, command, env)
    RUNNING.append(process)
    return process


def stop(process: Process | None) -> None:
    if process is not None:
        process.stop()
        with contextlib.suppress(ValueError):
            RUNNING.remove(process)


def http_get(url: str, *, headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback URLs built here
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Web:
    """One gunicorn (gunicorn.conf.py) on a free port, with its own metrics directory."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        prom = WORK / f"prom-{name}"
        shutil.rmtree(prom, ignore_errors=True)
        prom.mkdir(parents=True)
        env = {**env, "GUNICORN_BIND": f"127.0.0.1:{self.port}", "PROMETHEUS_MULTIPROC_DIR": str(prom)}
        self.process = start(
            f"gunicorn-{name}", [str(APP_BIN / "gunicorn"), "softfactory.wsgi", "-c", "gunicorn.conf.py"], env
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not self.process.alive():
                raise RuntimeError(f"gunicorn {name} exited:\n{self.process.tail()}")
            with contextlib.suppress(OSError):
                if http_get(self.base + "/healthz", timeout=2)[0] == 200:
                    return
            time.sleep(0.3)
        raise RuntimeError(f"gunicorn {name} did not answer /healthz:\n{self.process.tail()}")

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return parse_metrics(http_get(self.base + "/metrics", timeout=30)[1].decode())

    def stop(self) -> None:
        stop(self.process)


# --- metrics ---------------------------------------------------------------------------------

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_metrics(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return samples


def directory_metrics(path: Path) -> Samples:
    """Samples a process wrote in multiprocess mode (the Celery worker), read from its files."""
    if not path.exists():
        return {}
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(path))
    return parse_metrics(generate_latest(registry).decode())


def delta(before: Samples, after: Samples) -> Samples:
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and all(dict(sample_labels).get(k) == v for k, v in labels.items())
    )


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for (sample, labels), value in samples.items():
        if sample == name:
            key = dict(labels).get(label, "")
            found[key] = found.get(key, 0.0) + value
    return found


def histogram_quantile(samples: Samples, name: str, q: float) -> float | None:
    """Prometheus's histogram_quantile over every label set of `name` (linear within a bucket)."""
    buckets: dict[float, float] = {}
    for (sample, labels), value in samples.items():
        if sample == f"{name}_bucket":
            bound = float(dict(labels)["le"])
            buckets[bound] = buckets.get(bound, 0.0) + value
    if not buckets or buckets.get(float("inf"), 0.0) <= 0:
        return None
    rank = q * buckets[float("inf")]
    previous_bound, previous_count = 0.0, 0.0
    for bound in sorted(buckets):
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return previous_bound
            share = (rank - previous_count) / (count - previous_count) if count > previous_count else 1.0
            return previous_bound + (bound - previous_bound) * share
        previous_bound, previous_count = bound, count
    return previous_bound


# --- locust ----------------------------------------------------------------------------------


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def locust(
    tag: str,
    base: str,
    user_class: str,
    *,
    users: int,
    seconds: int,
    spawn_rate: float | None = None,
    env: dict[str, str] | None = None,
    reset_stats: bool = False,
    on_steady: tuple[float, Callable[[], None]] | None = None,
) -> dict[str, Any]:
    """One headless locust run; returns the Aggregated row and every named row of its CSV.

    `on_steady` = (seconds, callback): called once that long after the start (the end of the ramp).
    """
    prefix = WORK / f"locust-{tag}"
    command = [
        str(TOOLS_BIN / "locust"),
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-u",
        str(users),
        "-r",
        str(spawn_rate or users),
        "-t",
        f"{seconds}s",
        "--host",
        base,
        "--csv",
        str(prefix),
        "--only-summary",
        "--stop-timeout",
        "10",
        "--loglevel",
        "WARNING",
        *(["--reset-stats"] if reset_stats else []),
        user_class,
    ]
    locust_env = {**os.environ, **(env or {})}
    with (WORK / f"locust-{tag}.log").open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=locust_env, stdout=out, stderr=subprocess.STDOUT)
        began = time.monotonic()
        while process.poll() is None:
            time.sleep(0.5)
            elapsed = time.monotonic() - began
            if on_steady is not None and elapsed >= on_steady[0]:
                on_steady[1]()
                on_steady = None
            if seconds >= 30 and elapsed % 15 < 0.5:
                log(f"  {tag}: {elapsed:.0f}/{seconds} s {_progress(prefix)}")
    rows = list(csv.DictReader((WORK / f"locust-{tag}_stats.csv").open()))
    parsed = {row["Name"]: _row(row) for row in rows}
    result = parsed.pop("Aggregated", _row({}))
    result["endpoints"] = parsed
    return result


def _progress(prefix: Path) -> str:
    history = prefix.with_name(prefix.name + "_stats_history.csv")
    if not history.exists():
        return ""
    rows = [row for row in csv.DictReader(history.open()) if row.get("Name") == "Aggregated"]
    if not rows:
        return ""
    row = rows[-1]
    return f"(users {row['User Count']}, {row['Requests/s']} req/s now, p95 {row['95%']} ms, {row['Total Failure Count']} failures)"


def _row(row: dict[str, str]) -> dict[str, Any]:
    count = int(_number(row.get("Request Count", "0")) or 0)
    failures = int(_number(row.get("Failure Count", "0")) or 0)
    return {
        "requests": count,
        "failures": failures,
        "error_rate": failures / count if count else 0.0,
        "rps": _number(row.get("Requests/s", "")) or 0.0,
        "p50_ms": _number(row.get("50%", "")),
        "p95_ms": _number(row.get("95%", "")),
        "p99_ms": _number(row.get("99%", "")),
        "max_ms": _number(row.get("Max Response Time", "")),
    }


# --- phases ------------------------------------------------------------------------------------


def seed(st: Stack, scale: Scale) -> dict[str, Any]:
    """Migrations, users and tokens, the 10k-chef copy, then the default scale, timed."""
    tokens = VAR / "seed_tokens.txt"
    env = st.env()
    run_app(["manage.py", "migrate", "--noinput", "-v", "0"], env, label="migrate")
    began = time.monotonic()
    run_app(
        ["manage.py", "seed", "--scale", scale.seed, "--only-users", "--tokens-file", str(tokens)], env, label="seed"
    )
    users_seconds = time.monotonic() - began
    # Same users and tokens on the copy: the template must have no session open, and has none now.
    sql(st.dsn("postgres"), f'DROP DATABASE IF EXISTS "{SMALL_DB}"', fetch=False)
    sql(st.dsn("postgres"), f'CREATE DATABASE "{SMALL_DB}" TEMPLATE "{MAIN_DB}"', fetch=False)
    began = time.monotonic()
    output = run_app(["manage.py", "seed", "--scale", scale.seed, "--tokens-file", str(tokens)], env, label="seed")
    seconds = time.monotonic() - began
    timings = {name: float(value) for name, value in re.findall(r"^(seed\w*): .* in ([0-9.]+)s(?: \(|$)", output, re.M)}
    coocook = re.search(r"seed_coocook: \w+ scale done in ([0-9.]+)s \((\d+) chefs, (\d+) bookings", output)
    log(f"seeding {scale.growth_chefs:,} chefs into the copy ({SMALL_DB})")
    small = last_json(
        run_app(
            [str(APPSIDE), "seed-chefs", "--count", str(scale.growth_chefs), "--bookings", str(scale.growth_bookings)],
            st.env(db=SMALL_DB),
            label="seed-10k",
        )
    )
    counts = dict(
        sql(
            st.dsn(),
            "SELECT 'chefs', count(*) FROM coocook_chef UNION ALL SELECT 'bookings', count(*) FROM coocook_booking "
            "UNION ALL SELECT 'campaigns', count(*) FROM review_campaign UNION ALL SELECT 'posts', count(*) FROM sns_snspost "
            "UNION ALL SELECT 'users', count(*) FROM platform_core_user",
        )
    )
    return {
        "users_seconds": round(users_seconds, 1),
        "domain_seconds": round(seconds, 1),
        "per_command_seconds": timings,
        "coocook_seconds": float(coocook.group(1)) if coocook else None,
        "bookings": int(coocook.group(3)) if coocook else None,
        "rows": {k: int(v) for k, v in counts.items()},
        "growth_copy": small,
    }


def park_seeded_work(st: Stack) -> dict[str, int]:
    """Push the seeder's in-flight posts (claims, retries due soon) a day ahead.

    The seed leaves posts mid-publish with short leases and retries due within minutes; left
    alone, the worker would spend the mix and the drain re-publishing tens of thousands of them.
    """
    publishing = sql(
        st.dsn(),
        "WITH moved AS (UPDATE sns_snspost SET lease_expires_at = now() + interval '1 day' "
        "WHERE status = 'publishing' RETURNING 1) SELECT count(*) FROM moved",
    )[0][0]
    scheduled = sql(
        st.dsn(),
        "WITH moved AS (UPDATE sns_snspost SET next_attempt_at = now() + interval '1 day' "
        "WHERE status = 'scheduled' AND next_attempt_at < now() + interval '2 hours' RETURNING 1) "
        "SELECT count(*) FROM moved",
    )[0][0]
    return {"publishing_leases_extended": int(publishing), "scheduled_postponed": int(scheduled)}


def _index_word(uses_index: bool | None) -> str:
    return "n/a" if uses_index is None else ("yes" if uses_index else "**no**")


def explain(st: Stack) -> list[dict[str, Any]]:
    result = last_json(run_app([str(APPSIDE), "explain"], st.env(), label="explain", show=False))
    checked = []
    for query in result["queries"]:
        plan: list[str] = query["plan"]
        table = query["table"]
        lines = [line.strip().removeprefix("->  ") for line in plan]
        indexes = sorted(
            {
                m
                for line in lines
                for m in re.findall(rf"Index (?:Only )?Scan(?: Backward)? using (\S+) on {table}\b", line)
            }
            | {m for line in lines for m in re.findall(r"Bitmap Index Scan on (\S+)", line)}
        )
        seq = any(re.search(rf"Seq Scan on {table}\b", line) for line in lines)
        timing = next((line for line in lines if line.startswith("Execution Time")), "")
        key_lines = [
            line.rstrip()
            for line in plan
            if re.search(r"Scan|Sort Key|Sort Method|Execution Time|Limit|Aggregate", line)
        ][:8]
        checked.append(
            {
                "name": query["name"],
                "table": table,
                # None: a tiny table (the stored counts) where a sequential scan is the right plan.
                "uses_index": (bool(indexes) and not seq) if query.get("needs_index", True) else None,
                "indexes": indexes,
                "execution_ms": float(timing.split(":")[1].split()[0]) if timing else None,
                "key_lines": key_lines,
            }
        )
    return checked


def worker_classes(st: Stack) -> dict[str, Any]:
    """gunicorn.conf.py's default worker class, and the other one the run compares it with."""
    code = "import runpy; c = runpy.run_path('gunicorn.conf.py'); print(c['worker_class'], c['threads'], c['workers'])"
    worker_class, threads, workers = run_app(["-c", code], st.env(), label="gunicorn.conf", show=False).split()[-3:]
    default = "gthread" if worker_class == "gthread" else "sync"
    alternative_env = {"GUNICORN_WORKER_CLASS": "sync", "GUNICORN_THREADS": "1"}
    if default == "sync":
        # One thread per worker: keep-alive without GIL contention, gthread's best in the mix
        # (docs/PERFORMANCE.md, "sync or gthread"); BENCH_ALTERNATIVE_THREADS for another count.
        threads_alt = os.environ.get("BENCH_ALTERNATIVE_THREADS", "1")
        alternative_env = {"GUNICORN_WORKER_CLASS": "gthread", "GUNICORN_THREADS": threads_alt}
    return {
        "default": default,
        "default_config": f"{worker_class}, {workers} workers x {threads} threads",
        "alternative": "gthread" if default == "sync" else "sync",
        "alternative_config": f"{alternative_env['GUNICORN_WORKER_CLASS']}, {workers} workers x "
        f"{alternative_env['GUNICORN_THREADS']} threads",
        "alternative_env": alternative_env,
    }


def hot_ids(st: Stack, db: str = MAIN_DB) -> dict[str, int]:
    chef = sql(
        st.dsn(db),
        "SELECT id FROM coocook_chef WHERE is_active AND review_count > 0 ORDER BY rating DESC, id LIMIT 1",
    )
    campaign = sql(
        st.dsn(db), "SELECT id FROM review_campaign WHERE status = 'active' ORDER BY created_at DESC, id LIMIT 1"
    )
    return {"chef": chef[0][0] if chef else 1, "campaign": campaign[0][0] if campaign else 1}


# (key, label, path, signed in, served from the shared response cache)
ENDPOINTS: list[tuple[str, str, str, bool, bool]] = [
    ("chefs", "chef list", "/api/coocook/chefs", False, True),
    (
        "chefs_filtered",
        "chef list ?cuisine&ordering",
        "/api/coocook/chefs?cuisine=korean&ordering=hourly_rate",
        False,
        True,
    ),
    ("chef", "chef detail", "/api/coocook/chefs/{chef}", False, True),
    ("chef_reviews", "chef reviews", "/api/coocook/chefs/{chef}/reviews", False, True),
    ("campaigns", "campaign list", "/api/review/campaigns", False, True),
    ("campaign", "campaign detail", "/api/review/campaigns/{campaign}", False, True),
    ("bookings", "my bookings (per user)", "/api/coocook/bookings", True, False),
    ("posts", "my posts (per user)", "/api/sns/posts", True, False),
    ("payments", "my payments (per user)", "/api/payment/payments", True, False),
]
LISTS = {
    "chefs": "/api/coocook/chefs",
    "chef_reviews": "/api/coocook/chefs/{chef}/reviews",
    "campaigns": "/api/review/campaigns",
    "bookings": "/api/coocook/bookings",
    "posts": "/api/sns/posts",
    "payments": "/api/payment/payments",
}


def measure(web: Web, tag: str, path: str, scale: Scale, *, auth: bool = False, name: str = "") -> dict[str, Any]:
    """One endpoint at fixed concurrency, no think time; plus its queries per request."""
    before = web.metrics()
    env = {
        "BENCH_PATHS": path,
        "BENCH_AUTH": "1" if auth else "0",
        "BENCH_NAME": name or path,
        "BENCH_TOKENS_FILE": str(VAR / "seed_tokens.txt"),
    }
    result = locust(tag, web.base, "EndpointUser", users=scale.concurrency, seconds=scale.endpoint_seconds, env=env)
    moved = delta(before, web.metrics())
    result["path"] = path
    result["queries_per_request"] = (
        round(total(moved, "django_db_execute_total") / result["requests"], 2) if result["requests"] else None
    )
    cache = by_label(moved, "softfactory_cache_requests_total", "result")
    result["cache"] = {k: int(v) for k, v in cache.items() if v}
    log(
        f"  {tag}: {result['rps']:,.0f} req/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
        f"{result['failures']} failures, {result['queries_per_request']} queries/request"
    )
    return result


def queries_by_page_size(web: Web, ids: dict[str, int], tokens: list[str]) -> dict[str, dict[str, float]]:
    """Database queries per list request at per_page=1 and per_page=100 (must not differ)."""
    found: dict[str, dict[str, float]] = {}
    headers = {"Authorization": f"Token {tokens[0]}"}
    for key, template in LISTS.items():
        path = template.format(**ids)
        signed = key in ("bookings", "posts", "payments")
        found[key] = {}
        for per_page in (1, 100):
            url = f"{web.base}{path}{'&' if '?' in path else '?'}per_page={per_page}"
            # Every worker first opens its connections and fills the token cache: not what is counted.
            for _ in range(25):
                http_get(url, headers=headers if signed else None)
            before = web.metrics()
            for _ in range(20):
                http_get(url, headers=headers if signed else None)
            found[key][str(per_page)] = round(total(delta(before, web.metrics()), "django_db_execute_total") / 20, 2)
    return found


TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # fields from 3 (state) on: utime is [11], stime [12]


def tree_cpu_seconds(root: int) -> float:
    """CPU time of a process, its live children and every child it already reaped (cutime)."""
    fields = _stat(root)
    if fields is None:
        return 0.0
    ticks = sum(int(v) for v in fields[11:15])
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(root):
            child = _stat(int(entry.name))
            if child is not None and child[1] == str(root):
                ticks += sum(int(v) for v in child[11:15])
    return ticks / TICKS


def tier_pids(web: Web) -> dict[str, list[int]]:
    """Root process of each tier of the private stack, this run's gunicorn and Celery, and locust."""
    tiers: dict[str, list[int]] = {"web (gunicorn)": [web.process.pid]}
    for name, tier in (
        ("primary", "PostgreSQL primary"),
        ("replica_1", "PostgreSQL replicas"),
        ("replica_2", "PostgreSQL replicas"),
        ("redis", "Redis"),
    ):
        with contextlib.suppress(RuntimeError, ValueError, IndexError):
            tiers.setdefault(tier, []).append(int(stack("pids", name).split()[0]))
    celery = [p.pid for p in RUNNING if p.name.startswith("celery") and p.alive()]
    if celery:
        tiers["Celery worker + beat"] = celery
    return tiers


def cpu_snapshot(tiers: dict[str, list[int]]) -> dict[str, float]:
    return {tier: sum(tree_cpu_seconds(pid) for pid in pids) for tier, pids in tiers.items()}


class LagMonitor:
    """Highest replica lag (seconds and WAL bytes) seen while it runs, asked of the servers."""

    def __init__(self, st: Stack) -> None:
        self.st = st
        self.max_seconds = 0.0
        self.max_bytes = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def reset(self) -> None:
        self.max_seconds, self.max_bytes, self.samples = 0.0, 0, 0

    def __enter__(self) -> LagMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        primary = psycopg2.connect(self.st.dsn())
        replicas = [psycopg2.connect(self.st.dsn(server=i + 1)) for i in range(len(self.st.replica_urls))]
        for conn in (primary, *replicas):
            conn.autocommit = True
        try:
            while not self._stop.wait(0.5):
                with primary.cursor() as cur:
                    cur.execute("SELECT pg_current_wal_lsn()")
                    lsn = cur.fetchone()[0]
                for replica in replicas:
                    with replica.cursor() as cur:
                        # Seconds count only while received WAL waits to be replayed (an idle primary is not lag).
                        cur.execute(
                            "SELECT CASE WHEN COALESCE(pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn(), true) THEN 0 "
                            "ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END, "
                            "GREATEST(pg_wal_lsn_diff(%s, pg_last_wal_replay_lsn()), 0)",
                            [lsn],
                        )
                        seconds, lag_bytes = cur.fetchone()
                    self.max_seconds = max(self.max_seconds, float(seconds or 0))
                    self.max_bytes = max(self.max_bytes, int(lag_bytes or 0))
                self.samples += 1
        finally:
            for conn in (primary, *replicas):
                conn.close()


def start_workers(st: Stack, webhook_port: int) -> tuple[Process, Process]:
    prom = WORK / "prom-worker"
    shutil.rmtree(prom, ignore_errors=True)
    prom.mkdir(parents=True)
    env = st.env(
        PROMETHEUS_MULTIPROC_DIR=str(prom),
        SNS_WEBHOOK_URL=f"http://127.0.0.1:{webhook_port}/publish",
        SNS_PUBLISHERS=",".join(f"{p}=sns.publishers.WebhookPublisher" for p in PLATFORMS),
        LOG_LEVEL="WARNING",
    )
    celery = str(APP_BIN / "celery")
    # One `celery worker` process; its pool is WORKER_POOL (docs/PERFORMANCE.md says why).
    pool, concurrency = WORKER_POOL
    worker = start(
        "celery-worker",
        [
            celery,
            "-A",
            "softfactory",
            "worker",
            "-Q",
            CELERY_QUEUES,
            "-P",
            pool,
            "-c",
            str(concurrency),
            "-n",
            "bench@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "WARNING",
        ],
        env,
    )
    beat = start(
        "celery-beat",
        [
            celery,
            "-A",
            "softfactory",
            "beat",
            "-S",
            "django_celery_beat.schedulers:DatabaseScheduler",
            "--pidfile",
            str(WORK / "beat.pid"),
            "-s",
            str(WORK / "beat.schedule"),
            "-l",
            "WARNING",
        ],
        env,
    )
    time.sleep(3)
    for process in (worker, beat):
        if not process.alive():
            raise RuntimeError(f"{process.name} exited:\n{process.tail()}")
    return worker, beat


def celery_outcome(st: Stack, since: dt.datetime, before: Samples, *, wait: float = 60) -> dict[str, Any]:
    """What became of the background work the mix triggered: its posts and notification emails."""
    deadline = time.monotonic() + wait
    query = (
        "SELECT count(*), count(*) FILTER (WHERE status = 'published'), count(*) FILTER (WHERE status = 'failed') "
        "FROM sns_snspost WHERE created_at >= %s AND content LIKE 'Benchmark post %%'"
    )
    while True:
        posts, published, failed = sql(st.dsn(), query, [since])[0]
        if published + failed >= posts or time.monotonic() > deadline:
            break
        time.sleep(1)
    notes: dict[str, int] = {}
    if sql(st.dsn(), "SELECT to_regclass('platform_core_notification') IS NOT NULL")[0][0]:
        notes = dict(
            sql(
                st.dsn(),
                "SELECT status, count(*) FROM platform_core_notification WHERE created_at >= %s GROUP BY 1",
                [since],
            )
        )
    tasks = delta(before, directory_metrics(WORK / "prom-worker"))
    outcomes = by_label(tasks, "softfactory_celery_tasks_total", "outcome")
    runs = sum(outcomes.values())
    return {
        "posts_scheduled": int(posts),
        "posts_published": int(published),
        "posts_failed": int(failed),
        "post_success_rate": published / posts if posts else None,
        "notifications": {k: int(v) for k, v in notes.items()},
        "notification_success_rate": notes.get("sent", 0) / sum(notes.values()) if notes else None,
        "task_runs": {k: int(v) for k, v in outcomes.items()},
        "task_success_rate": outcomes.get("success", 0) / runs if runs else None,
    }


def mix(web: Web, st: Stack, scale: Scale, tag: str, seconds: int, *, users: int | None = None) -> dict[str, Any]:
    """The locust mix, with what the app's metrics and the servers say about it."""
    users = users or scale.mix_users
    worker_before = directory_metrics(WORK / "prom-worker")
    since = dt.datetime.now(dt.UTC)
    env = {"BENCH_TOKENS_FILE": str(VAR / "seed_tokens.txt"), "BENCH_POST_DELAY_SECONDS": "20"}
    # Users arrive over MIX_RAMP_SECONDS, as traffic does; the caches fill from the ramp's own
    # requests (nothing is warmed by hand), then the steady state is measured.
    spawn = max(users / MIX_RAMP_SECONDS, 1)
    snapshot: dict[str, Samples] = {}
    tiers: dict[str, list[int]] = {}
    cpu_before: dict[str, float] = {}
    generator_before, generator_began = os.times(), time.monotonic()
    with LagMonitor(st) as lag:
        # Locust resets its stats once every user has spawned, and the app's metrics and the lag
        # monitor start from that moment too: `seconds` of steady state are measured.
        ramp = int(users / spawn) + 1

        def steady() -> None:
            snapshot["before"] = web.metrics()
            lag.reset()
            tiers.update(tier_pids(web))
            cpu_before.update(cpu_snapshot(tiers))
            cpu_before["wall"] = time.monotonic()

        result = locust(
            tag,
            web.base,
            "MixUser",
            users=users,
            seconds=seconds + ramp,
            spawn_rate=spawn,
            env=env,
            reset_stats=True,
            on_steady=(ramp, steady),
        )
        cpu_after = cpu_snapshot(tiers)
        wall = time.monotonic() - cpu_before.get("wall", time.monotonic())
    # locust has exited and been reaped: its CPU time is in this process's children times.
    generator = os.times()
    generator_cpu = generator.children_user + generator.children_system
    generator_cpu -= generator_before.children_user + generator_before.children_system
    generator_cores = generator_cpu / (time.monotonic() - generator_began)
    moved = delta(snapshot["before"], web.metrics())
    requests = total(moved, "django_http_responses_total_by_status_total")
    routes: dict[tuple[str, str], float] = {}
    for (name, labels), value in moved.items():
        if name == "softfactory_db_route_total" and value:
            label = dict(labels)
            routes[(label.get("alias", ""), label.get("reason", ""))] = value
    # Reads of GET requests: everything but the reads a write request or transaction sends to the primary.
    write_reasons = {"unsafe_method", "wrote", "atomic"}
    get_reads = {k: v for k, v in routes.items() if k[1] not in write_reasons}
    on_replicas = sum(v for (alias, _), v in get_reads.items() if alias != "default")
    cache = by_label(moved, "softfactory_cache_requests_total", "result")
    looked_up = sum(v for k, v in cache.items() if k in ("hit", "miss", "early_refresh", "error"))
    result.update(
        {
            "users": users,
            "seconds": seconds,
            "db_query_p99_ms": _ms(histogram_quantile(moved, "django_db_query_duration_seconds", 0.99)),
            "db_query_p50_ms": _ms(histogram_quantile(moved, "django_db_query_duration_seconds", 0.50)),
            "queries_per_request": round(total(moved, "django_db_execute_total") / requests, 2) if requests else None,
            "cache_hit_ratio": (cache.get("hit", 0) + cache.get("early_refresh", 0)) / looked_up if looked_up else None,
            "cache_lookups": {k: int(v) for k, v in cache.items() if v},
            "cache_fill_source": {
                k: int(v) for k, v in by_label(moved, "softfactory_cache_fill_source_total", "source").items() if v
            },
            "replica_read_share": on_replicas / sum(get_reads.values()) if get_reads else None,
            "routing": {f"{alias}/{reason}": int(v) for (alias, reason), v in sorted(routes.items())},
            "replica_lag_max_seconds": round(lag.max_seconds, 3),
            "replica_lag_max_bytes": lag.max_bytes,
            "replica_lag_samples": lag.samples,
            # CPU each tier burnt during the steady state: per request, and in cores busy on average.
            "cpu_ms_per_request": {
                tier: round((cpu_after[tier] - cpu_before[tier]) * 1000 / max(result["requests"], 1), 3)
                for tier in cpu_after
                if tier in cpu_before
            },
            "cpu_cores_busy": {
                **{
                    tier: round((cpu_after[tier] - cpu_before[tier]) / wall, 3)
                    for tier in cpu_after
                    if tier in cpu_before and wall
                },
                "load generator (locust, whole run)": round(generator_cores, 3),
            },
        }
    )
    log(f"  {tag}: waiting for the Celery jobs the mix triggered")
    result["celery"] = celery_outcome(st, since, worker_before)
    return result


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def drain(st: Stack, count: int, webhook: int) -> dict[str, Any]:
    """`count` posts due at once, published by the one worker already running; time, delay, duplicates."""
    stats_before = json.loads(http_get(f"http://127.0.0.1:{webhook}/stats")[1])
    due_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=8)
    made = last_json(
        run_app(
            [str(APPSIDE), "due-posts", "--count", str(count), "--at", due_at.isoformat()],
            st.env(),
            label="due-posts",
            show=False,
        )
    )
    low, high = made["min_id"], made["max_id"]
    query = (
        "SELECT count(*) FILTER (WHERE status = 'published'), count(*) FILTER (WHERE status = 'failed'), "
        "count(*) FILTER (WHERE status IN ('scheduled', 'publishing')) FROM sns_snspost WHERE id BETWEEN %s AND %s"
    )
    deadline = time.monotonic() + max(180, count / 20)
    published = failed = 0
    while time.monotonic() < deadline:
        published, failed, pending = sql(st.dsn(), query, [low, high])[0]
        if not pending:
            break
        if int(time.time()) % 5 == 0:
            log(f"  drain: {published:,}/{count:,} published, {failed} failed")
        time.sleep(1)
    row = sql(
        st.dsn(),
        "SELECT EXTRACT(EPOCH FROM max(published_at) - min(scheduled_at)), "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM published_at - scheduled_at)), "
        "percentile_cont(0.99) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM published_at - scheduled_at)), "
        "count(*) FILTER (WHERE published_at < scheduled_at) "
        "FROM sns_snspost WHERE id BETWEEN %s AND %s AND status = 'published'",
        [low, high],
    )[0]
    seconds, p50, p99, early = (float(row[0] or 0), float(row[1] or 0), float(row[2] or 0), int(row[3] or 0))
    stats = json.loads(http_get(f"http://127.0.0.1:{webhook}/stats")[1])
    return {
        "posts": count,
        "published": int(published),
        "failed": int(failed),
        "seconds": round(seconds, 2),
        "posts_per_second": round(published / seconds, 1) if seconds else None,
        "delay_p50_s": round(p50, 3),
        "delay_p99_s": round(p99, 3),
        "published_early": early,
        "deliveries": stats["deliveries"] - stats_before["deliveries"],
        "duplicates": stats["duplicates"] - stats_before["duplicates"],
        "worker": f"one celery worker, {WORKER_POOL[0]} pool, concurrency {WORKER_POOL[1]}",
    }


# (table, column writers update, column the test index covers)
INDEX_TARGETS = {
    "sns_snspost": ("content", "created_at"),
    "coocook_booking": ("notes", "created_at"),
    "review_application": ("message", "created_at"),
    "coocook_review": ("comment", "created_at"),
}


def index_build(st: Stack) -> dict[str, Any]:
    """Longest write stall while CREATE INDEX CONCURRENTLY runs, next to a plain CREATE INDEX."""
    sizes = sql(
        st.dsn(),
        "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relname = ANY(%s) ORDER BY 2 DESC",
        [list(INDEX_TARGETS)],
    )
    table = sizes[0][0]
    column, indexed = INDEX_TARGETS[table]
    max_id = sql(st.dsn(), f"SELECT max(id) FROM {table}")[0][0]  # noqa: S608 - names from INDEX_TARGETS
    result: dict[str, Any] = {"table": table, "rows_max_id": max_id, "size_bytes": sizes[0][1], "writers": 4}
    for mode, statement in (
        ("baseline", None),
        ("concurrently", f"CREATE INDEX CONCURRENTLY bench_build_idx ON {table} ({indexed})"),
        ("plain", f"CREATE INDEX bench_build_idx ON {table} ({indexed})"),
    ):
        stalls: list[float] = []
        stop_writers = threading.Event()

        def writer(seed: int, stalls: list[float] = stalls, stop_writers: threading.Event = stop_writers) -> None:
            conn = psycopg2.connect(st.dsn())
            conn.autocommit = True
            row = seed
            try:
                with conn.cursor() as cur:
                    while not stop_writers.is_set():
                        row = (row * 7919 + 104729) % max_id + 1
                        began = time.monotonic()
                        cur.execute(f"UPDATE {table} SET {column} = {column} WHERE id = %s", [row])  # noqa: S608
                        stalls.append(time.monotonic() - began)
            finally:
                conn.close()

        threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(result["writers"])]
        for thread in threads:
            thread.start()
        time.sleep(1)
        began = time.monotonic()
        if statement:
            sql(st.dsn(), statement, fetch=False)
        else:
            time.sleep(3)
        build_seconds = time.monotonic() - began
        time.sleep(1)
        stop_writers.set()
        for thread in threads:
            thread.join(timeout=60)
        if statement:
            sql(st.dsn(), "DROP INDEX IF EXISTS bench_build_idx", fetch=False)
        result[mode] = {
            "build_seconds": round(build_seconds, 2) if statement else None,
            "writes": len(stalls),
            "longest_write_ms": round(max(stalls) * 1000, 1) if stalls else None,
            "write_p99_ms": round(statistics.quantiles(stalls, n=100)[98] * 1000, 2) if len(stalls) > 100 else None,
        }
        log(f"  index build {mode}: {result[mode]}")
    return result


# --- profiling ---------------------------------------------------------------------------------


def profile(web: Web, path: str, scale: Scale, tag: str) -> dict[str, Any]:
    """py-spy on every gunicorn worker while the endpoint is under load: where the time goes."""
    raw = WORK / f"profile-{tag}.txt"
    spy = shutil.which("py-spy", path=str(TOOLS_BIN))
    if spy is None:
        return {"skipped": "py-spy is not installed"}
    recorder = subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(web.process.pid),
            "--subprocesses",
            "--nonblocking",
            "--format",
            "raw",
            "--rate",
            "200",
            "--duration",
            str(scale.endpoint_seconds),
            "-o",
            str(raw),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    locust(
        f"profile-{tag}",
        web.base,
        "EndpointUser",
        users=scale.concurrency,
        seconds=scale.endpoint_seconds,
        env={"BENCH_PATHS": path, "BENCH_NAME": path},
    )
    try:
        recorder.wait(timeout=60)
    except subprocess.TimeoutExpired:
        recorder.kill()
    if not raw.exists():
        return {"skipped": "py-spy recorded nothing (ptrace not permitted?)"}
    return summarize_profile(raw)


def summarize_profile(raw: Path) -> dict[str, Any]:
    """Where the busy samples went (the collapsed stacks py-spy wrote).

    `inclusive`: share of samples whose stack passes through that part (parts overlap);
    `self_by_package`: share of samples whose innermost frame is in that package.
    """
    inclusive = {
        "database calls (cursor execute)": ("CursorWrapper.execute", "CursorWrapper._execute", "psycopg2"),
        "database connect / health check": ("connect (psycopg2", "is_usable", "ensure_connection"),
        "Redis calls (cache, token, positions)": ("redis/",),
        "ORM: building SQL, making objects": ("django/db/models/sql/compiler.py", "django/db/models/query.py"),
        "DRF serializers": ("rest_framework/serializers.py", "rest_framework/fields.py"),
        "JSON rendering": ("renderers.py", "json/encoder.py"),
        "replica routing (softfactory)": (
            "softfactory/db_router.py",
            "softfactory/replicas.py",
            "softfactory/positions.py",
        ),
        "response cache (softfactory/cache.py)": ("softfactory/cache.py",),
        "Prometheus instrumentation": ("prometheus_client/", "django_prometheus/"),
        "gunicorn closing connections": ("close_graceful",),
    }
    counts = dict.fromkeys(inclusive, 0)
    packages: dict[str, int] = {}
    leaves: dict[str, int] = {}
    samples = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack_text, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        n = int(number)
        samples += n
        for area, needles in inclusive.items():
            if any(needle in stack_text for needle in needles):
                counts[area] += n
        leaf = stack_text.rsplit(";", 1)[-1]
        leaves[leaf] = leaves.get(leaf, 0) + n
        where = re.search(r"\(([^:()]+)\.py:\d+\)$", leaf)
        package = where.group(1).split("/")[0] if where else "?"
        packages[package] = packages.get(package, 0) + n
    if not samples:
        return {"samples": 0}
    top = sorted(leaves.items(), key=lambda item: -item[1])[:12]
    return {
        "samples": samples,
        "inclusive": {k: round(v / samples, 3) for k, v in counts.items()},
        "self_by_package": {k: round(v / samples, 3) for k, v in sorted(packages.items(), key=lambda i: -i[1])[:10]},
        "top_frames": [{"frame": k, "share": round(v / samples, 3)} for k, v in top],
    }


# --- report ------------------------------------------------------------------------------------


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the figure this run measured."""
    ep = results["endpoints"]
    mixed = results["mix"]
    control = ep["control_cached"]["rps"] or 1
    control_uncached = ep["control_uncached"]["rps"] or 1
    list_uncached = ep.get("chefs_uncached", {}).get("rps", 0)
    growth = results["growth"]
    pages = results["queries_by_page_size"]
    naive_ratio = REFERENCE_NAIVE_LIST_RPS / REFERENCE_PLAIN_DJANGO_RPS

    def row(name: str, target: str, measured: str, ok: bool | None) -> dict[str, Any]:
        return {"target": name, "goal": target, "measured": measured, "met": ok}

    def fmt(value: float | None, spec: str = ".2f", unit: str = "") -> str:
        return "n/a" if value is None else f"{value:{spec}}{unit}"

    cached_ratio = ep["chefs_cached"]["rps"] / control
    rows = [
        row("cached chef list vs control", ">= 0.70 x", f"{cached_ratio:.2f} x", cached_ratio >= 0.7),
        row(
            "uncached chef list vs the naive DRF figure",
            f">= 10 x (>= {10 * naive_ratio:.2f} x control)",
            f"{list_uncached / control_uncached / naive_ratio:.1f} x naive ({list_uncached / control_uncached:.2f} x control, {list_uncached:,.0f} req/s)",
            list_uncached / control_uncached >= 10 * naive_ratio,
        ),
        row(
            f"uncached chef list, {growth['full_chefs']:,} vs {growth['small_chefs']:,} chefs",
            "<= 1.5 x slower",
            f"{growth['slowdown']:.2f} x",
            growth["slowdown"] <= 1.5,
        ),
        row(
            "queries per list request, per_page 1 vs 100",
            "equal",
            ", ".join(f"{k} {v['1']:g}/{v['100']:g}" for k, v in pages.items()),
            all(round(v["1"]) == round(v["100"]) for v in pages.values()),
        ),
    ]
    share = mixed.get("replica_read_share")
    rows.append(
        row(
            "GET reads served by replicas (mix)",
            ">= 90 %",
            fmt(share and share * 100, ".1f", " %"),
            share is not None and share >= 0.9,
        )
    )
    rows.append(
        row(
            "mix p99",
            "< 100 ms",
            fmt(mixed["p99_ms"], ".0f", " ms")
            + (
                f" (at {results['mix_half']['users']:,} users: {fmt(results['mix_half']['p99_ms'], '.0f', ' ms')})"
                if results.get("mix_half")
                else ""
            ),
            mixed["p99_ms"] is not None and mixed["p99_ms"] < 100,
        )
    )
    rows.append(row("mix errors", "0", f"{mixed['failures']} of {mixed['requests']:,}", mixed["failures"] == 0))
    hit = mixed.get("cache_hit_ratio")
    rows.append(
        row("cache hit ratio (mix)", ">= 90 %", fmt(hit and hit * 100, ".1f", " %"), hit is not None and hit >= 0.9)
    )
    db99 = mixed.get("db_query_p99_ms")
    rows.append(row("database query p99 (mix)", "< 50 ms", fmt(db99, ".1f", " ms"), db99 is not None and db99 < 50))
    rows.append(
        row(
            "replica lag (mix)",
            "< 1 s",
            f"{mixed['replica_lag_max_seconds']:.3f} s",
            mixed["replica_lag_max_seconds"] < 1,
        )
    )
    celery = mixed["celery"]
    rate = celery.get("post_success_rate")
    rows.append(
        row(
            "Celery jobs of the mix",
            "all succeed",
            fmt(rate and rate * 100, ".1f", " % of posts published"),
            rate == 1.0,
        )
    )
    dr = results["drain"]
    rows.append(
        row(
            f"{dr['posts']:,} due posts, one worker",
            "<= 30 s" if dr["posts"] >= 10_000 else "(10,000 at full scale)",
            f"{dr['seconds']:.1f} s ({fmt(dr['posts_per_second'], ',.0f')} posts/s)",
            dr["seconds"] <= 30 * dr["posts"] / 10_000 and dr["published"] == dr["posts"],
        )
    )
    rows.append(row("duplicate publications", "0", str(dr["duplicates"]), dr["duplicates"] == 0))
    ib = results["index_build"]
    stall = ib["concurrently"]["longest_write_ms"]
    rows.append(
        row(
            "longest write stall, concurrent index build",
            "<= 100 ms",
            f"{fmt(stall, '.0f', ' ms')} (plain CREATE INDEX: {fmt(ib['plain']['longest_write_ms'], '.0f', ' ms')})",
            stall is not None and stall <= 100,
        )
    )
    sd = results["seed"]
    if sd.get("bookings"):
        rows.append(
            row(
                f"seeding {sd['bookings']:,} bookings (seed_coocook)",
                "<= 60 s" if sd["bookings"] >= 1_000_000 else "(1M at full scale)",
                f"{sd['coocook_seconds']:.1f} s",
                sd["coocook_seconds"] <= 60 * sd["bookings"] / 1_000_000,
            )
        )
    indexed = [q for q in results["explain"] if q["uses_index"] is not None]
    rows.append(
        row(
            "hot queries use their index",
            "all",
            ", ".join(f"{q['name']}: {'yes' if q['uses_index'] else 'NO'}" for q in indexed),
            all(q["uses_index"] for q in indexed),
        )
    )
    if results["scale"] != "full":
        # Sizes, times and plans of the small data set say nothing about these targets.
        scale_bound = ("due posts, one worker", "seeding", "hot queries use their index")
        for r in rows:
            if any(word in r["target"] for word in scale_bound):
                r["met"] = None
    return rows


def markdown(results: dict[str, Any]) -> str:
    ep = results["endpoints"]
    lines = [
        f"# SoftFactory benchmark, {results['date']} ({results['scale']} scale)",
        "",
        f"Machine: {results['machine']['cores']} cores, load average {results['machine']['load_before']} at start and "
        f"{results['machine'].get('load_after')} at the end (other work shares the machine); "
        f"load generator on the same machine. gunicorn {results['gunicorn']}. Every figure below comes from this one run.",
        "",
        "## Endpoints at fixed concurrency (keep-alive client, no think time)",
        "",
        f"{results['concurrency']} concurrent clients, {results['endpoint_seconds']} s each. Ratios are to the control (`/healthz`) measured on the same server.",
        "",
        "| endpoint | mode | req/s | x control | p50 ms | p95 ms | p99 ms | errors | queries/req |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, value in ep.items():
        mode = mode_of(key, results)
        control = ep[f"control_{key.rsplit('_', 1)[1]}" if not key.endswith("_user") else "control_cached"]["rps"] or 1
        lines.append(
            f"| {value['label']} | {mode} | {value['rps']:,.0f} | {value['rps'] / control:.2f} | {_n(value['p50_ms'])} "
            f"| {_n(value['p95_ms'])} | {_n(value['p99_ms'])} | {value['failures']} | {value.get('queries_per_request')} |"
        )
    g = results["growth"]
    lines += [
        "",
        f"Uncached chef list: {g['small_rps']:,.0f} req/s at {g['small_chefs']:,} chefs, {g['full_rps']:,.0f} req/s at "
        f"{g['full_chefs']:,} chefs: {g['slowdown']:.2f} x slower.",
        "",
        "## The mix",
        "",
    ]
    m = results["mix"]
    lines += [
        f"{m['users']:,} locust users (1-3 s think time), {m['seconds']} s after a {MIX_RAMP_SECONDS} s ramp-up, {results['worker_classes']['default']} workers.",
        "",
        "| req/s | p50 ms | p95 ms | p99 ms | errors | DB query p99 ms | cache hit ratio | GET reads on replicas | queries/request | max replica lag | Celery posts published |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {m['rps']:,.0f} | {_n(m['p50_ms'])} | {_n(m['p95_ms'])} | {_n(m['p99_ms'])} | {m['failures']} / {m['requests']:,} | {m['db_query_p99_ms']} "
        f"| {_pct(m['cache_hit_ratio'])} | {_pct(m['replica_read_share'])} | {m['queries_per_request']} "
        f"| {m['replica_lag_max_seconds']:.3f} s / {m['replica_lag_max_bytes']:,} B | {_pct(m['celery']['post_success_rate'])} of {m['celery']['posts_scheduled']} |",
        "",
        "CPU during the steady state, per tier: "
        + "; ".join(
            f"{tier} {m['cpu_cores_busy'].get(tier, 0):.2f} cores, {ms:.2f} ms/request"
            for tier, ms in m.get("cpu_ms_per_request", {}).items()
        )
        + f"; load generator {m.get('cpu_cores_busy', {}).get('load generator (locust, whole run)', 0):.2f} cores.",
        "",
        "| request | count | req/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in sorted(m["endpoints"].items()):
        lines.append(
            f"| {name} | {row['requests']:,} | {row['rps']:,.1f} | {_n(row['p50_ms'])} | {_n(row['p95_ms'])} | {_n(row['p99_ms'])} | {row['failures']} |"
        )
    if results.get("mix_alternative"):
        wc = results["worker_classes"]
        lines += ["", f"Worker classes, the same mix for {results['mix_alternative']['seconds']} s each:", ""]
        lines += ["| workers | req/s | p50 ms | p95 ms | p99 ms | errors |", "|---|---:|---:|---:|---:|---:|"]
        for name, run_ in (
            (wc["default_config"], results["mix_default_short"]),
            (wc.get("alternative_config", wc["alternative"]), results["mix_alternative"]),
        ):
            lines.append(
                f"| {name} | {run_['rps']:,.0f} | {_n(run_['p50_ms'])} | {_n(run_['p95_ms'])} | {_n(run_['p99_ms'])} "
                f"| {run_['failures']} / {run_['requests']:,} |"
            )
    if results.get("mix_half"):
        h = results["mix_half"]
        web_cores = h.get("cpu_cores_busy", {}).get("web (gunicorn)", 0)
        lines += [
            "",
            f"The same mix at {h['users']:,} users ({h['seconds']} s, sync workers): the latency when the machine is "
            "not saturated.",
            "",
            "| users | req/s | p50 ms | p95 ms | p99 ms | errors | DB query p99 ms | cache hit ratio | web CPU |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {h['users']:,} | {h['rps']:,.0f} | {_n(h['p50_ms'])} | {_n(h['p95_ms'])} | {_n(h['p99_ms'])} "
            f"| {h['failures']} / {h['requests']:,} | {h['db_query_p99_ms']} | {_pct(h['cache_hit_ratio'])} "
            f"| {web_cores:.2f} cores |",
        ]
    lo = results["login"]
    lines += [
        "",
        f"Logins (password hashing, measured apart): {lo['rps']:,.1f} req/s, p50 {lo['p50_ms']} ms, p99 {lo['p99_ms']} ms, {lo['failures']} errors.",
    ]
    d = results["drain"]
    lines += [
        "",
        "## Background work, index build, plans",
        "",
        f"Drain: {d['published']:,} of {d['posts']:,} due posts published in {d['seconds']:.1f} s ({d['posts_per_second']} posts/s) by "
        f"{d['worker']}; publish delay p50 {d['delay_p50_s']} s, p99 {d['delay_p99_s']} s; {d['duplicates']} duplicates, "
        f"{d['published_early']} published early.",
        "",
    ]
    ib = results["index_build"]
    lines.append(
        f"Index build on `{ib['table']}` ({ib['size_bytes'] / 2**20:,.0f} MiB) with {ib['writers']} writers: longest write "
        f"{ib['baseline']['longest_write_ms']} ms with no build, {ib['concurrently']['longest_write_ms']} ms during CREATE INDEX "
        f"CONCURRENTLY ({ib['concurrently']['build_seconds']} s), {ib['plain']['longest_write_ms']} ms during a plain CREATE INDEX "
        f"({ib['plain']['build_seconds']} s)."
    )
    lines += ["", "| hot query | uses its index | index | execution ms |", "|---|---|---|---:|"]
    for q in results["explain"]:
        lines.append(
            f"| {q['name']} | {_index_word(q['uses_index'])} | {', '.join(q['indexes'])} | {q['execution_ms']} |"
        )
    sd = results["seed"]
    lines += [
        "",
        f"Seeding: {sd['rows']}; seed_coocook {sd['coocook_seconds']} s, all domains {sd['domain_seconds']} s ({sd['per_command_seconds']}).",
    ]
    lines += ["", "## Targets", "", "| target | goal | measured | met |", "|---|---|---|---|"]
    for t in results["targets"]:
        met = "n/a (full scale only)" if t["met"] is None else "yes" if t["met"] else "**no**"
        lines.append(f"| {t['target']} | {t['goal']} | {t['measured']} | {met} |")
    if results.get("profiles"):
        lines += ["", "## Profiles (py-spy, share of busy samples)", ""]
        for name, prof in results["profiles"].items():
            areas = ", ".join(f"{k} {v * 100:.0f} %" for k, v in prof.get("inclusive", {}).items())
            lines.append(f"- {name}: {areas or prof.get('skipped')}")
    return "\n".join(lines) + "\n"


def _n(value: float | None) -> str:
    """Latencies: whole milliseconds are printed without a fraction (locust rounds them anyway)."""
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def mode_of(key: str, results: dict[str, Any]) -> str:
    suffix = key.rsplit("_", 1)[1]
    if suffix == "alt":
        return results["worker_classes"]["alternative"]
    return {"uncached": "uncached", "cached": "cached", "user": "per user"}.get(suffix, suffix)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f} %"


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = results["endpoints"]
    names = [f"{v['label'].removesuffix(' (per user)')}\n({mode_of(k, results)})" for k, v in ep.items()]
    figure, (left, right) = plt.subplots(1, 2, figsize=(16, max(6, len(ep) * 0.45)))
    positions = list(range(len(ep)))
    right.barh(positions, [v["rps"] for v in ep.values()], color="#4c72b0")
    right.set_yticks(positions, names, fontsize=7)
    right.invert_yaxis()
    right.set_xlabel("requests/s")
    right.set_title(f"throughput, {results['concurrency']} clients")
    height = 0.27
    for offset, (key, color) in enumerate((("p50_ms", "#55a868"), ("p95_ms", "#dd8452"), ("p99_ms", "#c44e52"))):
        left.barh(
            [p + (offset - 1) * height for p in positions],
            [v[key] or 0 for v in ep.values()],
            height,
            label=key[:-3],
            color=color,
        )
    left.set_yticks(positions, names, fontsize=7)
    left.invert_yaxis()
    left.set_xlabel("latency, ms")
    left.set_title("latency percentiles")
    left.legend()
    m = results["mix"]
    figure.suptitle(
        f"SoftFactory {results['scale']} scale, {results['date']}: mix of {m['users']} users {m['rps']:,.0f} req/s, "
        f"p99 {m['p99_ms']} ms, {m['failures']} errors"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# --- the run -----------------------------------------------------------------------------------


@contextlib.contextmanager
def everything_stopped(keep_stack: bool) -> Iterator[None]:
    try:
        yield
    finally:
        for process in reversed(RUNNING[:]):
            stop(process)
        if keep_stack:
            log(f"private stack left running (SOFTFACTORY_VAR={VAR} scripts/stack stop)")
        else:
            log("destroying the private stack")
            with contextlib.suppress(RuntimeError):
                stack("destroy")


def run(scale: Scale, *, keep_stack: bool, profile_enabled: bool) -> dict[str, Any]:
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "scale": scale.seed,
        "machine": {"cores": os.cpu_count(), "load_before": round(os.getloadavg()[0], 2)},
        "concurrency": scale.concurrency,
        "endpoint_seconds": scale.endpoint_seconds,
        "endpoints": {},
        "profiles": {},
    }
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    log(f"private stack under {VAR} (fresh)")
    with contextlib.suppress(RuntimeError):
        stack("destroy")
    st = Stack(stack("start"))
    with everything_stopped(keep_stack):
        log(f"seeding: {scale.seed} scale")
        results["seed"] = seed(st, scale)
        log(f"seeded {results['seed']['rows']} in {results['seed']['domain_seconds']} s")
        results["parked"] = park_seeded_work(st)
        log("EXPLAIN (ANALYZE, BUFFERS) of the hot queries on a replica")
        results["explain"] = explain(st)
        for q in results["explain"]:
            log(
                f"  {q['name']}: {'index ' + ', '.join(q['indexes']) if q['uses_index'] else _index_word(q['uses_index'])}, {q['execution_ms']} ms"
            )
            for line in q["key_lines"]:
                log(f"      {line}")
        ids = hot_ids(st)
        tokens = (VAR / "seed_tokens.txt").read_text().split()
        results["worker_classes"] = worker_classes(st)
        results["gunicorn"] = f"{results['worker_classes']['default_config']} (gunicorn.conf.py defaults)"

        log(f"uncached chef list on the {scale.growth_chefs:,}-chef copy")
        web = Web("growth", st.env(db=SMALL_DB, redis_db=3, extra=UNCACHED_ENV))
        growth_small = measure(web, "growth-small", "/api/coocook/chefs", scale)
        web.stop()

        log("response cache off: control and hot endpoints uncached")
        web = Web("uncached", st.env(extra=UNCACHED_ENV))
        results["endpoints"]["control_uncached"] = {
            "label": "/healthz (control)",
            **measure(web, "control-uncached", "/healthz", scale),
        }
        for key, label, template, auth, cacheable in ENDPOINTS:
            if cacheable:
                path = template.format(**ids)
                measured = measure(web, f"{key}-uncached", path, scale, auth=auth)
                if measured["cache"].get("hit"):
                    # The switch was not honoured: this is not an uncached figure; say so loudly.
                    log(f"  WARNING: {key} was served from the cache with {UNCACHED_ENV} set")
                    results.setdefault("warnings", []).append(f"{key}: cache hits while the cache was off")
                results["endpoints"][f"{key}_uncached"] = {"label": label, **measured}
        results["queries_by_page_size"] = queries_by_page_size(web, ids, tokens)
        log(f"  queries per list request (per_page 1 / 100): {results['queries_by_page_size']}")
        if profile_enabled:
            log("  profiling the uncached chef list (py-spy)")
            results["profiles"]["chef list, uncached"] = profile(web, "/api/coocook/chefs", scale, "chefs-uncached")
        web.stop()
        full_chefs = results["seed"]["rows"]["chefs"]
        small_rps = growth_small["rps"]
        full_rps = results["endpoints"]["chefs_uncached"]["rps"]
        results["growth"] = {
            "small_chefs": scale.growth_chefs,
            "full_chefs": full_chefs,
            "small_rps": small_rps,
            "full_rps": full_rps,
            "small_p99_ms": growth_small["p99_ms"],
            "full_p99_ms": results["endpoints"]["chefs_uncached"]["p99_ms"],
            "slowdown": small_rps / full_rps if full_rps else float("inf"),
        }
        # Which server is "small" depends on the scale: at small scale the main database has fewer chefs.
        if full_chefs < scale.growth_chefs:
            g = results["growth"]
            g["small_chefs"], g["full_chefs"] = full_chefs, scale.growth_chefs
            g["small_rps"], g["full_rps"] = full_rps, small_rps
            g["small_p99_ms"], g["full_p99_ms"] = g["full_p99_ms"], g["small_p99_ms"]
            g["slowdown"] = full_rps / small_rps if small_rps else float("inf")

        log("response cache on (as deployed): control, cached endpoints, per-user lists, logins")
        web = Web("cached", st.env())
        results["endpoints"]["control_cached"] = {
            "label": "/healthz (control)",
            **measure(web, "control-cached", "/healthz", scale),
        }
        for key, label, template, auth, cacheable in ENDPOINTS:
            path = template.format(**ids)
            suffix = "cached" if cacheable else "user"
            results["endpoints"][f"{key}_{suffix}"] = {
                "label": label,
                **measure(web, f"{key}-{suffix}", path, scale, auth=auth),
            }
        if profile_enabled:
            log("  profiling the cached chef list (py-spy)")
            results["profiles"]["chef list, cached"] = profile(web, "/api/coocook/chefs", scale, "chefs-cached")
        results["login"] = locust(
            "login",
            web.base,
            "LoginUser",
            users=4,
            seconds=max(scale.endpoint_seconds, 10),
            env={"BENCH_USER_COUNT": str(scale.users), "BENCH_PASSWORD": SEED_PASSWORD},
        )
        log(f"  logins: {results['login']['rps']:.1f} req/s, p99 {results['login']['p99_ms']} ms")

        webhook_port = free_port()
        webhook = start("webhook", [sys.executable, str(BENCH / "webhook.py"), str(webhook_port)], dict(os.environ))
        start_workers(st, webhook_port)
        log(f"the mix: {scale.mix_users:,} users for {scale.mix_seconds} s (plus ramp-up), one Celery worker and beat")
        results["mix"] = mix(web, st, scale, "mix", scale.mix_seconds)
        m = results["mix"]
        log(
            f"  mix: {m['rps']:,.0f} req/s, p99 {m['p99_ms']} ms, {m['failures']} errors, hit ratio {_pct(m['cache_hit_ratio'])}, "
            f"replicas {_pct(m['replica_read_share'])}, DB p99 {m['db_query_p99_ms']} ms, lag {m['replica_lag_max_seconds']} s"
        )
        if scale.compare_mix_seconds:
            results["mix_default_short"] = mix(web, st, scale, "mix-default-short", scale.compare_mix_seconds)
            # The same mix at half the users: the latency these 2 cores give when not saturated.
            half = scale.mix_users // 2
            log(f"the mix at {half:,} users for {scale.compare_mix_seconds} s (plus ramp-up)")
            results["mix_half"] = mix(web, st, scale, "mix-half", scale.compare_mix_seconds, users=half)
            h = results["mix_half"]
            log(f"  mix at {half:,} users: {h['rps']:,.0f} req/s, p99 {h['p99_ms']} ms, {h['failures']} errors")

        log(f"drain: {scale.drain_posts:,} due posts, one Celery worker process")
        results["drain"] = drain(st, scale.drain_posts, webhook_port)
        log(f"  drain: {results['drain']}")
        web.stop()

        alternative = results["worker_classes"]["alternative"]
        log(f"{alternative} workers instead: control, endpoints, mix")
        web = Web("alternative", st.env(extra=results["worker_classes"]["alternative_env"]))
        results["endpoints"]["control_alt"] = {
            "label": "/healthz (control)",
            **measure(web, "control-alt", "/healthz", scale),
        }
        for key, label, template, auth, _cacheable in ENDPOINTS:
            if key in ("chefs", "chef", "bookings"):
                path = template.format(**ids)
                results["endpoints"][f"{key}_alt"] = {
                    "label": label,
                    **measure(web, f"{key}-alt", path, scale, auth=auth),
                }
        if scale.compare_mix_seconds:
            results["mix_alternative"] = mix(web, st, scale, "mix-alternative", scale.compare_mix_seconds)
        web.stop()
        for process in [p for p in RUNNING if p.name.startswith("celery")]:
            stop(process)
        stop(webhook)

        log("index build on the largest table while writers run")
        results["index_build"] = index_build(st)
    results["machine"]["load_after"] = round(os.getloadavg()[0], 2)
    results["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    results["duration_seconds"] = round(time.monotonic() - STARTED, 1)
    results["targets"] = targets(results)
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/run.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", choices=sorted(SCALES), default=os.environ.get("SCALE", "full"))
    parser.add_argument("--keep-stack", action="store_true", help="leave the private stack running (and its data)")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profiles (full scale)")
    parser.add_argument("--profile", action="store_true", help="py-spy profiles at small scale too")
    args = parser.parse_args(argv)
    if not (APP_BIN / "gunicorn").exists():
        print("the app's virtualenv is missing: run `make venv` first (make bench does)", file=sys.stderr)
        return 2
    scale = SCALES[args.scale]
    profiles = args.profile or (scale.seed == "full" and not args.no_profile)
    results = run(scale, keep_stack=args.keep_stack, profile_enabled=profiles)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = results["date"] + ("" if scale.seed == "full" else f"-{scale.seed}")
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    summary = markdown(results)
    (RESULTS / f"{stem}.md").write_text(summary)
    chart(results, RESULTS / f"{stem}.png")
    print(summary)
    log(f"results: bench/results/{stem}.json, .md, .png ({results['duration_seconds']:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
