"""Idempotent replays repeat the first answer's status, body and the headers that belong to it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from platform_core.models import IdempotencyRecord
from sns.models import SNSPost

pytestmark = pytest.mark.django_db

SCHEDULE = "/api/sns/schedule"


def schedule_body() -> dict[str, str]:
    return {
        "platform": "twitter",
        "content": "Tteokbokki pop-up on Friday",
        "scheduled_at": (timezone.now() + timedelta(days=2)).isoformat(),
    }


def test_a_replayed_schedule_repeats_the_location_header_of_the_first_answer(client_for, user):
    client, payload = client_for(user), schedule_body()

    first = client.post(SCHEDULE, payload, format="json", HTTP_IDEMPOTENCY_KEY="loc-1")
    replay = client.post(SCHEDULE, payload, format="json", HTTP_IDEMPOTENCY_KEY="loc-1")

    assert (first.status_code, replay.status_code) == (202, 202)
    assert first["Location"] == f"/api/sns/posts/{first.json()['id']}"
    assert replay["Location"] == first["Location"]
    assert replay["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert SNSPost.objects.filter(user=user).count() == 1


def test_a_record_written_before_headers_were_stored_still_replays_its_status_and_body(client_for, user):
    client, payload = client_for(user), schedule_body()
    first = client.post(SCHEDULE, payload, format="json", HTTP_IDEMPOTENCY_KEY="old-1")
    IdempotencyRecord.objects.filter(key="old-1").update(response_headers=None)

    replay = client.post(SCHEDULE, payload, format="json", HTTP_IDEMPOTENCY_KEY="old-1")

    assert replay.status_code == 202
    assert replay.json() == first.json()
    assert "Location" not in replay
