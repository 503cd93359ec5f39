"""gunicorn settings, all overridable from the environment (docs/PERFORMANCE.md explains them).

The app is preloaded, then forked: settings import does no database or Redis I/O, and every
connection is opened lazily inside a worker.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", 2 * multiprocessing.cpu_count() + 1))
# sync by default: in the benchmark's 1,000-user mix it had a lower p99 than gthread x 4 (threads
# of one worker contend for its GIL) and than gthread x 1. gthread x 1 keeps connections alive and
# used less CPU until workers recycled (max_requests): a kept-alive connection stays with its worker,
# so a restarted worker's clients pile onto the others and the new one idles (docs/PERFORMANCE.md,
# "sync or gthread"). Each gthread thread holds its own database connections.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
threads = int(os.environ.get("GUNICORN_THREADS", 4 if worker_class == "gthread" else 1))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 30))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 5))
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 10000))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", 1000))
preload_app = True
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
errorlog = "-"
proc_name = "softfactory"

# Prometheus multiprocess mode (docs/DEPLOYMENT.md): each worker writes its samples to files in
# PROMETHEUS_MULTIPROC_DIR and /metrics adds them up, so a scrape sees every worker. The directory
# comes from the start-up environment (prometheus_client reads it at import, before the fork), and
# the launcher (`make run`, the compose web service) wipes it before each start: files of a previous
# run would be counted again.
prometheus_multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if prometheus_multiproc_dir:
    os.makedirs(prometheus_multiproc_dir, exist_ok=True)


def child_exit(server: object, worker: object) -> None:
    """A worker exited: drop its live gauges (its counters stay, so totals never go backwards)."""
    if prometheus_multiproc_dir:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
