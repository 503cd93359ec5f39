# Exact campaign-list counts, kept in the writing transaction by statement-level triggers.

from django.db import migrations, models

# Each statement applies its per-key deltas as one grouped upsert (a 100k-row COPY costs one),
# in key order so that writers touching several keys lock count rows in the same order, and
# skips zero deltas (an applicant_count update never locks a count row). plpgsql plans each statement on
# first use, so a trigger never touches the transition table it doesn't have.
FORWARD = """
-- The table Django would create for the model, made re-runnable.
CREATE TABLE IF NOT EXISTS "review_campaigncount" (
    "status" varchar(10) NOT NULL, "category" varchar(50) NOT NULL, "n" bigint NOT NULL,
    PRIMARY KEY ("status", "category")
);

-- CREATE TRIGGER takes SHARE ROW EXCLUSIVE: taken up front (it includes SHARE), so no write
-- slips in between the backfill and the triggers and the lock is never upgraded mid-way.
LOCK TABLE review_campaign IN SHARE ROW EXCLUSIVE MODE;

CREATE OR REPLACE FUNCTION review_campaign_count_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO review_campaigncount AS c (status, category, n)
        SELECT status, category, count(*) FROM campaign_new
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (status, category) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO review_campaigncount AS c (status, category, n)
        SELECT status, category, -count(*) FROM campaign_old
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (status, category) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO review_campaigncount AS c (status, category, n)
        SELECT status, category, sum(delta) FROM (
            SELECT status, category, 1 AS delta FROM campaign_new
            UNION ALL
            SELECT status, category, -1 FROM campaign_old
        ) AS moved
        GROUP BY 1, 2 HAVING sum(delta) <> 0 ORDER BY 1, 2
        ON CONFLICT (status, category) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSE  -- TRUNCATE
        DELETE FROM review_campaigncount;
    END IF;
    RETURN NULL;
END
$$;

-- Transition tables need one trigger per event.
DROP TRIGGER IF EXISTS review_campaign_count_insert ON review_campaign;
CREATE TRIGGER review_campaign_count_insert AFTER INSERT ON review_campaign
    REFERENCING NEW TABLE AS campaign_new
    FOR EACH STATEMENT EXECUTE FUNCTION review_campaign_count_rows();
DROP TRIGGER IF EXISTS review_campaign_count_update ON review_campaign;
CREATE TRIGGER review_campaign_count_update AFTER UPDATE ON review_campaign
    REFERENCING OLD TABLE AS campaign_old NEW TABLE AS campaign_new
    FOR EACH STATEMENT EXECUTE FUNCTION review_campaign_count_rows();
DROP TRIGGER IF EXISTS review_campaign_count_delete ON review_campaign;
CREATE TRIGGER review_campaign_count_delete AFTER DELETE ON review_campaign
    REFERENCING OLD TABLE AS campaign_old
    FOR EACH STATEMENT EXECUTE FUNCTION review_campaign_count_rows();
DROP TRIGGER IF EXISTS review_campaign_count_truncate ON review_campaign;
CREATE TRIGGER review_campaign_count_truncate AFTER TRUNCATE ON review_campaign
    FOR EACH STATEMENT EXECUTE FUNCTION review_campaign_count_rows();

DELETE FROM review_campaigncount;
INSERT INTO review_campaigncount (status, category, n)
SELECT status, category, count(*) FROM review_campaign GROUP BY 1, 2;
"""

REVERSE = """
DROP TRIGGER IF EXISTS review_campaign_count_insert ON review_campaign;
DROP TRIGGER IF EXISTS review_campaign_count_update ON review_campaign;
DROP TRIGGER IF EXISTS review_campaign_count_delete ON review_campaign;
DROP TRIGGER IF EXISTS review_campaign_count_truncate ON review_campaign;
DROP FUNCTION IF EXISTS review_campaign_count_rows();
DROP TABLE IF EXISTS "review_campaigncount";
"""


class Migration(migrations.Migration):

    dependencies = [
        ('review', '0002_indexes'),
    ]

    operations = [
        # The table is created by FORWARD (IF NOT EXISTS), so a faked-back re-run succeeds.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='CampaignCount',
                    fields=[
                        ('pk', models.CompositePrimaryKey('status', 'category', blank=True, editable=False, primary_key=True, serialize=False)),
                        ('status', models.CharField(max_length=10)),
                        ('category', models.CharField(max_length=50)),
                        ('n', models.BigIntegerField()),
                    ],
                ),
            ],
            database_operations=[migrations.RunSQL(FORWARD, REVERSE)],
        ),
    ]
