# Exact campaign-list counts, kept in the writing transaction by statement-level triggers.

from django.db import migrations, models

from softfactory.stored_counts import stored_count_sql

# The table (what Django would create for the model, made re-runnable), the statement-level
# triggers that keep it exact and the backfill: softfactory/stored_counts.py.
FORWARD, REVERSE = stored_count_sql(
    table="review_campaign",
    counts="review_campaigncount",
    columns={"status": "varchar(10)", "category": "varchar(50)"},
    rows="campaign",
)


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
