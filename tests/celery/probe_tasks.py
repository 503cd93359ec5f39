"""A task that reports how its reads were routed; loaded only by test workers (`-I`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from celery import shared_task
from django.contrib.contenttypes.models import ContentType
from django.db.models.expressions import RawSQL

from sns.models import SNSPost
from softfactory.celery import POSITION_HEADER
from softfactory.db_router import current_state

SERVER = {
    "port": RawSQL("inet_server_port()", ()),
    "in_recovery": RawSQL("pg_is_in_recovery()", ()),
    # What that server has: its replay position on a replica, the current position on the primary.
    "position": RawSQL(
        "(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text", ()
    ),
}


@shared_task(bind=True, name="tests.celery.probe_tasks.read_post")
def read_post(self: Any, post_id: int, out_path: str) -> None:
    found = SNSPost.objects.filter(pk=post_id).exists()  # the routed read under test
    # The same task scope keeps the same server; ask it who it is rather than trusting alias names.
    port, in_recovery, position = ContentType.objects.annotate(**SERVER).values_list(*SERVER).first()
    carried = getattr(self.request, POSITION_HEADER, None) or (self.request.headers or {}).get(POSITION_HEADER)
    state = current_state()
    Path(out_path).write_text(
        json.dumps(
            {
                "carried": carried,
                "required_lsn": state.required_lsn,
                "alias": state.replica,
                "port": port,
                "in_recovery": in_recovery,
                "position": position,
                "found": found,
            }
        )
    )
