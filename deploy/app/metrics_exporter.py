"""Serve a Prometheus multiprocess directory added up, for a process that has no web server.

Celery's pool processes write their samples (task outcomes, SNS publishing) to
PROMETHEUS_MULTIPROC_DIR like gunicorn's workers do; deploy/app/worker.sh runs this next to the
worker so Prometheus can scrape them (job softfactory-worker, port 9809).
"""

from __future__ import annotations

import argparse
import os
import time

from prometheus_client import CollectorRegistry, multiprocess, start_http_server


def main() -> None:
    """Serve the directory's samples on /metrics until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=9809)
    parser.add_argument("--address", default="0.0.0.0")  # noqa: S104 - scraped from the compose network
    args = parser.parse_args()
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        raise SystemExit("PROMETHEUS_MULTIPROC_DIR is not set")
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    start_http_server(args.port, addr=args.address, registry=registry)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
