# Exact chef-list counts, kept in the writing transaction by statement-level triggers.

from django.db import migrations, models

from softfactory.stored_counts import stored_count_sql

# The table (what Django would create for the model, made re-runnable), the statement-level
# triggers that keep it exact and the backfill: softfactory/stored_counts.py.
FORWARD, REVERSE = stored_count_sql(
    table="coocook_chef",
    counts="coocook_chefcount",
    columns={"is_active": "boolean", "cuisine_type": "varchar(50)"},
    rows="chef",
)


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
