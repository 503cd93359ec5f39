"""Redis with deploy/redis/redis.conf: queued Celery messages survive a crash (AOF), and memory
pressure evicts cached entries but never broker queues or generation counters (volatile-lru).
Each test runs its own throwaway Redis; the stack's Redis is never restarted."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from celery import Celery
from kombu import Connection

from tests.ops.live import free_port
from tests.ops.tools import DEPLOY

QUEUE = "ops-aof-unconsumed"  # no worker listens here
OVERRIDDEN = {"port", "bind", "dir", "daemonize", "pidfile", "logfile"}


def throwaway_conf(workdir: Path, port: int, **changes: str) -> Path:
    """deploy/redis/redis.conf with this test's port and directory (as scripts/stack does)."""
    lines = [
        line
        for line in (DEPLOY / "redis" / "redis.conf").read_text().splitlines()
        if (line.split() or [""])[0] not in OVERRIDDEN | set(changes)
    ]
    lines += [f"port {port}", "bind 127.0.0.1", f"dir {workdir}", "daemonize no", f"logfile {workdir / 'redis.log'}"]
    lines += [f"{key.replace('_', '-')} {value}" for key, value in changes.items()]
    conf = workdir / "redis.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf


@contextmanager
def redis_server(conf: Path, port: int) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen([shutil.which("redis-server") or "redis-server", str(conf)])
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            if client.ping():
                break
        except redis.ConnectionError:
            pass
        assert process.poll() is None, (conf.parent / "redis.log").read_text()
        assert time.monotonic() < deadline, "throwaway redis did not start"
        time.sleep(0.05)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=20)


def queue_messages(broker_url: str, count: int) -> None:
    app = Celery("ops-aof", broker=broker_url)
    for n in range(count):
        app.send_task("sns.publish_post", args=[n], queue=QUEUE)
    app.close()


def crash_and_restart(conf: Path, port: int, process: subprocess.Popen) -> Iterator[subprocess.Popen]:
    time.sleep(1.5)  # appendfsync everysec: give the fsync its second
    os.kill(process.pid, signal.SIGKILL)  # a crash: no shutdown, no final write
    process.wait(timeout=10)
    return redis_server(conf, port)


@pytest.mark.parametrize(("appendonly", "survive"), [("yes", True), ("no", False)])
def test_queued_celery_messages_survive_a_crash_only_with_aof(tmp_path, appendonly, survive):
    port = free_port()
    conf = throwaway_conf(tmp_path, port, appendonly=appendonly)
    broker = f"redis://127.0.0.1:{port}/2"
    with redis_server(conf, port) as process:
        queue_messages(broker, 5)
        assert redis.Redis(port=port, db=2).llen(QUEUE) == 5
        redis.Redis(port=port, db=0).set("sf:gen:chefs", 7)  # a generation counter, no TTL
        with crash_and_restart(conf, port, process):
            if not survive:  # the control: without AOF the crash loses the queue
                assert redis.Redis(port=port, db=2).llen(QUEUE) == 0
                return
            assert redis.Redis(port=port, db=2).llen(QUEUE) == 5
            assert redis.Redis(port=port, db=0).get("sf:gen:chefs") == b"7"
            with Connection(broker) as connection:
                queue = connection.SimpleQueue(QUEUE)
                tasks = []
                for _ in range(5):
                    message = queue.get(timeout=5)
                    tasks.append((message.headers["task"], message.headers["argsrepr"]))
                    message.ack()
                queue.close()
            assert tasks == [("sns.publish_post", f"[{n}]") for n in range(5)]


def test_memory_pressure_evicts_cache_entries_but_not_broker_queues_or_counters(tmp_path):
    port = free_port()
    conf = throwaway_conf(tmp_path, port)
    assert "maxmemory-policy volatile-lru" in conf.read_text()
    with redis_server(conf, port):
        cache, broker = redis.Redis(port=port, db=0), f"redis://127.0.0.1:{port}/2"
        queue_messages(broker, 3)
        cache.set("sf:gen:chefs", 41)
        used = int(cache.info("memory")["used_memory"])
        cache.config_set("maxmemory", used + 2 * 1024 * 1024)
        value = b"x" * 4096
        for n in range(2000):  # ~8 MB of cached pages with a TTL: far over the limit
            cache.set(f"sf:chefs:g41:page:{n}", value, ex=300)
        assert int(cache.info("stats")["evicted_keys"]) > 0
        assert cache.dbsize() < 2000
        assert cache.get("sf:gen:chefs") == b"41"
        assert redis.Redis(port=port, db=2).llen(QUEUE) == 3
