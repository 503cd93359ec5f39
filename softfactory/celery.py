"""The Celery app. Settings live in softfactory/settings.py under CELERY_* (docs/SCHEDULING.md).

Every task is a `RoutedTask`: it carries the read-your-writes position of whatever enqueued it
(softfactory.db_router.capture_position) in a message header, and runs inside its own routing
scope restored from it, so a worker reads a replica only once that replica has replayed the
sender's writes, and no routing state leaks from one task into the next. Runs are counted in
softfactory_celery_tasks_total{task, outcome}.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, Task

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "softfactory.settings")

POSITION_HEADER = "sf_required_lsn"


class RoutedTask(Task):
    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:  # type: ignore[override]
        from softfactory.db_router import capture_position

        headers = dict(options.pop("headers", None) or {})
        if POSITION_HEADER not in headers:
            headers[POSITION_HEADER] = capture_position().get("required_lsn")
        return super().apply_async(args, kwargs, headers=headers, **options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from django.db import close_old_connections

        from softfactory import metrics
        from softfactory.db_router import restored_scope

        carried = getattr(self.request, POSITION_HEADER, None)
        if carried is None and self.request.headers:
            carried = self.request.headers.get(POSITION_HEADER)
        in_worker = not self.request.called_directly
        if in_worker:
            # A task is a request: drop connections that are broken or past CONN_MAX_AGE, keep the rest.
            close_old_connections()
        try:
            with restored_scope({"required_lsn": carried}):
                result = super().__call__(*args, **kwargs)
        except BaseException:
            metrics.CELERY_TASKS.labels(self.name, "failure").inc()
            raise
        finally:
            if in_worker:
                close_old_connections()
        metrics.CELERY_TASKS.labels(self.name, "success").inc()
        return result


app = Celery("softfactory", task_cls=RoutedTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
