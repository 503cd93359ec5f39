#!/bin/sh
# Entrypoint of db-replica-N: on first start (empty data directory) wait for the primary and
# clone it with pg_basebackup -R through a replication slot named after the replica — the same
# bootstrap as the local stack (scripts/stack ensure_replica): drop a stale slot of that name,
# then `pg_basebackup -R -X stream -c fast -C -S <name>`. Later starts just run the server,
# which resumes streaming from its slot. Then hands over to the official image's entrypoint.
set -eu
: "${REPLICA_NAME:?}" "${PRIMARY_HOST:?}" "${REPLICATION_PASSWORD:?}"
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
export PGPASSWORD="$REPLICATION_PASSWORD"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "replica $REPLICA_NAME: waiting for $PRIMARY_HOST"
    until pg_isready -q -h "$PRIMARY_HOST" -p 5432 -U replicator -d postgres; do sleep 1; done
    psql -h "$PRIMARY_HOST" -U replicator -d postgres -v ON_ERROR_STOP=1 -Atc \
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
         WHERE slot_name = '$REPLICA_NAME' AND NOT active"
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    echo "replica $REPLICA_NAME: pg_basebackup from $PRIMARY_HOST"
    gosu postgres pg_basebackup -h "$PRIMARY_HOST" -p 5432 -U replicator -D "$PGDATA" \
        -R -X stream -c fast -C -S "$REPLICA_NAME"
    # Keep the primary's address and our name in primary_conninfo (the stack's set_primary_conninfo).
    gosu postgres sh -c "grep -v '^primary_conninfo' '$PGDATA/postgresql.auto.conf' > '$PGDATA/auto.tmp' || true
        echo \"primary_conninfo = 'host=$PRIMARY_HOST port=5432 user=replicator password=$REPLICATION_PASSWORD application_name=$REPLICA_NAME'\" >> '$PGDATA/auto.tmp'
        mv '$PGDATA/auto.tmp' '$PGDATA/postgresql.auto.conf'"
fi
unset PGPASSWORD
exec docker-entrypoint.sh "$@"
