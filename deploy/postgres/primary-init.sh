#!/bin/sh
# First start of db-primary (docker-entrypoint-initdb.d): the roles, the app database and one
# replication slot per replica. The local stack does the same in scripts/stack
# (ensure_primary); the replicas then bootstrap themselves with replica-entrypoint.sh.
set -eu
: "${APP_DB_PASSWORD:?}" "${REPLICATION_PASSWORD:?}" "${MONITOR_PASSWORD:?}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v app_password="$APP_DB_PASSWORD" -v repl_password="$REPLICATION_PASSWORD" \
    -v monitor_password="$MONITOR_PASSWORD" <<'SQL'
-- The app: owns its database; pg_monitor lets /metrics read pg_stat_activity and
-- pg_stat_replication of every session (softfactory/health.py).
CREATE ROLE softfactory LOGIN PASSWORD :'app_password' IN ROLE pg_monitor;
CREATE DATABASE softfactory OWNER softfactory;
-- Streaming replication only.
CREATE ROLE replicator LOGIN REPLICATION PASSWORD :'repl_password';
-- postgres_exporter.
CREATE ROLE monitor LOGIN PASSWORD :'monitor_password' IN ROLE pg_monitor;
SQL

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname softfactory <<'SQL'
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
SQL
