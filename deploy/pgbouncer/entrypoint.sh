#!/bin/sh
# PgBouncer container entrypoint: write the auth_file from the template and the environment,
# then run PgBouncer in the foreground (it refuses to run as root; the image runs as postgres).
set -eu
: "${APP_DB_PASSWORD:?}" "${MONITOR_PASSWORD:?}" "${PGBOUNCER_ADMIN_PASSWORD:?}"
umask 077
sed -e "s|\${APP_DB_PASSWORD}|$APP_DB_PASSWORD|" \
    -e "s|\${MONITOR_PASSWORD}|$MONITOR_PASSWORD|" \
    -e "s|\${PGBOUNCER_ADMIN_PASSWORD}|$PGBOUNCER_ADMIN_PASSWORD|" \
    /etc/pgbouncer/userlist.template > /etc/pgbouncer/userlist.txt
exec pgbouncer /etc/pgbouncer/pgbouncer.ini
