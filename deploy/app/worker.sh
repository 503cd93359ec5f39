#!/bin/sh
# Start of a worker container: a fresh Prometheus multiprocess directory, the exporter that
# serves it added up on $WORKER_METRICS_PORT (Celery's pool processes write their task and SNS
# metrics there), then the Celery worker with the given arguments.
set -eu
: "${PROMETHEUS_MULTIPROC_DIR:?set PROMETHEUS_MULTIPROC_DIR}"
rm -rf "$PROMETHEUS_MULTIPROC_DIR"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
python deploy/app/metrics_exporter.py --port "${WORKER_METRICS_PORT:-9809}" --address "${WORKER_METRICS_ADDRESS:-0.0.0.0}" &
exec celery -A softfactory worker "$@"
