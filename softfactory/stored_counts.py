"""SQL for exact row counts kept in the writing transaction (docs/PERFORMANCE.md, change 1).

`stored_count_sql` returns the forward and reverse SQL of a migration that creates a count table
(`key columns -> n`) for a source table and the statement-level triggers that keep it exact for
every write path: ORM saves, `update()`, bulk writes, raw SQL, COPY, and TRUNCATE.

* Each statement applies its per-key deltas as one grouped upsert, using transition tables (one
  trigger per event: PostgreSQL requires it with transition tables), so a 100k-row COPY costs
  one upsert, not 100k.
* Deltas are applied in key order, so writers touching several keys lock count rows in the same
  order, and zero deltas are skipped (an update that changes no key never locks a count row).
* The backfill runs in the same transaction as the trigger creation, under SHARE ROW EXCLUSIVE on
  the source table (what CREATE TRIGGER takes anyway, taken first so it is never upgraded mid-way):
  no write slips between the two. Every statement is re-runnable.
* There is no global total row (it would be a hot row): an unfiltered count sums the key rows.
"""

from __future__ import annotations


def stored_count_sql(*, table: str, counts: str, columns: dict[str, str], rows: str) -> tuple[str, str]:
    """(forward, reverse) SQL for `counts` (`columns` name -> SQL type, plus `n`) over `table`.

    `rows` names the transition tables (`<rows>_new`, `<rows>_old`) inside the trigger function.
    """
    keys = ", ".join(columns)
    prefix = f"{table}_count"
    definitions = ", ".join(f'"{name}" {sql_type} NOT NULL' for name, sql_type in columns.items())
    primary_key = ", ".join(f'"{name}"' for name in columns)

    def upsert(source: str) -> str:
        return (
            f"INSERT INTO {counts} AS c ({keys}, n) {source} ON CONFLICT ({keys}) DO UPDATE SET n = c.n + EXCLUDED.n;"
        )

    # Identifiers only, from the migration's own constants: no value ever reaches this SQL.
    inserted = upsert(f"SELECT {keys}, count(*) FROM {rows}_new GROUP BY {keys} ORDER BY {keys}")  # noqa: S608
    deleted = upsert(f"SELECT {keys}, -count(*) FROM {rows}_old GROUP BY {keys} ORDER BY {keys}")  # noqa: S608
    moved = upsert(
        f"SELECT {keys}, sum(delta) FROM (SELECT {keys}, 1 AS delta FROM {rows}_new "  # noqa: S608
        f"UNION ALL SELECT {keys}, -1 FROM {rows}_old) AS moved "
        f"GROUP BY {keys} HAVING sum(delta) <> 0 ORDER BY {keys}"
    )
    triggers = {
        "insert": ("INSERT", f"REFERENCING NEW TABLE AS {rows}_new"),
        "update": ("UPDATE", f"REFERENCING OLD TABLE AS {rows}_old NEW TABLE AS {rows}_new"),
        "delete": ("DELETE", f"REFERENCING OLD TABLE AS {rows}_old"),
        "truncate": ("TRUNCATE", ""),
    }
    create_triggers = "\n".join(
        f"DROP TRIGGER IF EXISTS {prefix}_{name} ON {table};\n"
        f"CREATE TRIGGER {prefix}_{name} AFTER {event} ON {table} {referencing} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {prefix}_rows();"
        for name, (event, referencing) in triggers.items()
    )
    forward = f"""
CREATE TABLE IF NOT EXISTS "{counts}" ({definitions}, "n" bigint NOT NULL, PRIMARY KEY ({primary_key}));

LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE;

CREATE OR REPLACE FUNCTION {prefix}_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {inserted}
    ELSIF TG_OP = 'DELETE' THEN
        {deleted}
    ELSIF TG_OP = 'UPDATE' THEN
        {moved}
    ELSE  -- TRUNCATE
        DELETE FROM {counts};
    END IF;
    RETURN NULL;
END
$$;

{create_triggers}

DELETE FROM {counts};
INSERT INTO {counts} ({keys}, n) SELECT {keys}, count(*) FROM {table} GROUP BY {keys};
"""  # noqa: S608 - identifiers from the migration's constants
    reverse = "\n".join(
        [
            *(f"DROP TRIGGER IF EXISTS {prefix}_{name} ON {table};" for name in triggers),
            f"DROP FUNCTION IF EXISTS {prefix}_rows();",
            f'DROP TABLE IF EXISTS "{counts}";',
        ]
    )
    return forward, reverse
