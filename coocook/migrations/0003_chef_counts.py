# Exact chef-list counts, kept in the writing transaction by statement-level triggers.

from django.db import migrations, models

# Each statement applies its per-key deltas as one grouped upsert (a 100k-row COPY costs one),
# in key order so that writers touching several keys lock count rows in the same order, and
# skips zero deltas (a rating update never locks a count row). plpgsql plans each statement on
# first use, so a trigger never touches the transition table it doesn't have.
FORWARD = """
-- The table Django would create for the model, made re-runnable.
CREATE TABLE IF NOT EXISTS "coocook_chefcount" (
    "is_active" boolean NOT NULL, "cuisine_type" varchar(50) NOT NULL, "n" bigint NOT NULL,
    PRIMARY KEY ("is_active", "cuisine_type")
);

-- CREATE TRIGGER takes SHARE ROW EXCLUSIVE: taken up front (it includes SHARE), so no write
-- slips in between the backfill and the triggers and the lock is never upgraded mid-way.
LOCK TABLE coocook_chef IN SHARE ROW EXCLUSIVE MODE;

CREATE OR REPLACE FUNCTION coocook_chef_count_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO coocook_chefcount AS c (is_active, cuisine_type, n)
        SELECT is_active, cuisine_type, count(*) FROM chef_new
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (is_active, cuisine_type) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO coocook_chefcount AS c (is_active, cuisine_type, n)
        SELECT is_active, cuisine_type, -count(*) FROM chef_old
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (is_active, cuisine_type) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO coocook_chefcount AS c (is_active, cuisine_type, n)
        SELECT is_active, cuisine_type, sum(delta) FROM (
            SELECT is_active, cuisine_type, 1 AS delta FROM chef_new
            UNION ALL
            SELECT is_active, cuisine_type, -1 FROM chef_old
        ) AS moved
        GROUP BY 1, 2 HAVING sum(delta) <> 0 ORDER BY 1, 2
        ON CONFLICT (is_active, cuisine_type) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSE  -- TRUNCATE
        DELETE FROM coocook_chefcount;
    END IF;
    RETURN NULL;
END
$$;

-- Transition tables need one trigger per event.
DROP TRIGGER IF EXISTS coocook_chef_count_insert ON coocook_chef;
CREATE TRIGGER coocook_chef_count_insert AFTER INSERT ON coocook_chef
    REFERENCING NEW TABLE AS chef_new
    FOR EACH STATEMENT EXECUTE FUNCTION coocook_chef_count_rows();
DROP TRIGGER IF EXISTS coocook_chef_count_update ON coocook_chef;
CREATE TRIGGER coocook_chef_count_update AFTER UPDATE ON coocook_chef
    REFERENCING OLD TABLE AS chef_old NEW TABLE AS chef_new
    FOR EACH STATEMENT EXECUTE FUNCTION coocook_chef_count_rows();
DROP TRIGGER IF EXISTS coocook_chef_count_delete ON coocook_chef;
CREATE TRIGGER coocook_chef_count_delete AFTER DELETE ON coocook_chef
    REFERENCING OLD TABLE AS chef_old
    FOR EACH STATEMENT EXECUTE FUNCTION coocook_chef_count_rows();
DROP TRIGGER IF EXISTS coocook_chef_count_truncate ON coocook_chef;
CREATE TRIGGER coocook_chef_count_truncate AFTER TRUNCATE ON coocook_chef
    FOR EACH STATEMENT EXECUTE FUNCTION coocook_chef_count_rows();

DELETE FROM coocook_chefcount;
INSERT INTO coocook_chefcount (is_active, cuisine_type, n)
SELECT is_active, cuisine_type, count(*) FROM coocook_chef GROUP BY 1, 2;
"""

REVERSE = """
DROP TRIGGER IF EXISTS coocook_chef_count_insert ON coocook_chef;
DROP TRIGGER IF EXISTS coocook_chef_count_update ON coocook_chef;
DROP TRIGGER IF EXISTS coocook_chef_count_delete ON coocook_chef;
DROP TRIGGER IF EXISTS coocook_chef_count_truncate ON coocook_chef;
DROP FUNCTION IF EXISTS coocook_chef_count_rows();
DROP TABLE IF EXISTS "coocook_chefcount";
"""


class Migration(migrations.Migration):

    dependencies = [
        ('coocook', '0002_indexes'),
    ]

    operations = [
        # The table is created by FORWARD (IF NOT EXISTS), so a faked-back re-run succeeds.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ChefCount',
                    fields=[
                        ('pk', models.CompositePrimaryKey('is_active', 'cuisine_type', blank=True, editable=False, primary_key=True, serialize=False)),
                        ('is_active', models.BooleanField()),
                        ('cuisine_type', models.CharField(max_length=50)),
                        ('n', models.BigIntegerField()),
                    ],
                ),
            ],
            database_operations=[migrations.RunSQL(FORWARD, REVERSE)],
        ),
    ]
