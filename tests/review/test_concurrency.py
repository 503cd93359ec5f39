"""Concurrent requests, each on its own thread and database connection."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections
from rest_framework.test import APIClient

from review.models import Application, Campaign
from tests.platform_core.factories import StaffFactory, UserFactory, token_for
from tests.review.factories import CampaignFactory

Call = Callable[[APIClient], Any]  # the test client's response


def _all_at_once(calls: list[tuple[str, Call]]) -> list[tuple[int, str | None]]:
    """Run each (token, call) on its own thread, all released together; returns (status, code) in order."""
    start = threading.Barrier(len(calls))
    results: list[tuple[int, str | None] | None] = [None] * len(calls)

    def run(index: int, token: str, call: Call) -> None:
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
            start.wait(timeout=30)
            response = call(client)
            code = response.json().get("code") if response.status_code >= 400 else None
            results[index] = (response.status_code, code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, token, call)) for i, (token, call) in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(result is not None for result in results)
    return [result for result in results if result is not None]


def _apply(campaign_id: int) -> Call:
    return lambda client: client.post(
        f"/api/review/campaigns/{campaign_id}/applications", {"message": "me!"}, format="json"
    )


def _primary_state(campaign_id: int) -> tuple[int, int, int]:
    """(applicant_count, max_reviewers, pending+approved applications), read on the primary."""
    campaign = Campaign.objects.using("default").get(pk=campaign_id)
    seats = (
        Application.objects.using("default").filter(campaign_id=campaign_id, status__in=["pending", "approved"]).count()
    )
    return campaign.applicant_count, campaign.max_reviewers, seats


@pytest.mark.django_db(transaction=True)
def test_twelve_concurrent_applicants_never_overfill_five_seats():
    campaign = CampaignFactory.create(max_reviewers=5)
    calls = [(token_for(UserFactory.create()), _apply(campaign.pk)) for _ in range(12)]

    results = _all_at_once(calls)

    assert Counter(results) == {(201, None): 5, (409, "campaign_full"): 7}
    assert _primary_state(campaign.pk) == (5, 5, 5)


@pytest.mark.django_db(transaction=True)
def test_the_same_user_applying_concurrently_gets_exactly_one_application():
    campaign = CampaignFactory.create(max_reviewers=10)
    user = UserFactory.create()
    calls = [(token_for(user), _apply(campaign.pk)) for _ in range(6)]

    results = _all_at_once(calls)

    assert Counter(results) == {(201, None): 1, (409, "already_applied"): 5}
    assert Application.objects.using("default").filter(campaign_id=campaign.pk, user=user).count() == 1
    assert _primary_state(campaign.pk) == (1, 10, 1)


@pytest.mark.django_db(transaction=True)
def test_shrinking_a_campaign_while_users_apply_keeps_every_applicant_seated():
    campaign = CampaignFactory.create(max_reviewers=10)
    staff_token = token_for(StaffFactory.create())
    shrink: Call = lambda client: client.patch(  # noqa: E731
        f"/api/review/campaigns/{campaign.pk}", {"max_reviewers": 3}, format="json"
    )
    calls = [(token_for(UserFactory.create()), _apply(campaign.pk)) for _ in range(8)]
    calls.insert(4, (staff_token, shrink))

    results = _all_at_once(calls)

    patched = results.pop(4)
    assert patched[0] in (200, 400)
    assert set(results) <= {(201, None), (409, "campaign_full")}
    count, max_reviewers, seats = _primary_state(campaign.pk)
    assert count == seats == Counter(results)[(201, None)]
    assert count <= max_reviewers
    assert max_reviewers == (3 if patched[0] == 200 else 10)
