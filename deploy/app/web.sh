#!/bin/sh
# Start of a web container: a fresh Prometheus multiprocess directory — samples files left by
# a previous run would be added to this run's counters — then gunicorn (gunicorn.conf.py), whose
# child_exit hook marks dead workers in it.
set -eu
: "${PROMETHEUS_MULTIPROC_DIR:?set PROMETHEUS_MULTIPROC_DIR}"
rm -rf "$PROMETHEUS_MULTIPROC_DIR"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
exec gunicorn softfactory.wsgi -c gunicorn.conf.py
