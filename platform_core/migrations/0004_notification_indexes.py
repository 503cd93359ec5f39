# The outbox's partial index, built concurrently like every index (docs/MIGRATIONS.md).

import softfactory.migration_ops
from django.db import migrations, models


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY can't run in a transaction; each build is re-runnable.
    atomic = False

    dependencies = [
        ('platform_core', '0003_notification'),
    ]

    operations = [
        softfactory.migration_ops.AddIndexConcurrentlySafely(
            model_name='notification',
            index=models.Index(condition=models.Q(('status', 'pending')), fields=['next_attempt_at', 'id'], name='notification_pending_idx'),
        ),
    ]
