"""`manage.py seed_review`, at demo scale."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count, Q
from django.utils import timezone

from review.models import Application, Campaign
from tests.platform_core.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_seeding_needs_users_first():
    with pytest.raises(CommandError, match=r"run manage\.py seed first"):
        call_command("seed_review", scale="demo", stdout=StringIO())
    assert not Campaign.objects.exists()


def test_the_demo_seed_makes_twenty_consistent_campaigns():
    UserFactory.create_batch(12)
    out = StringIO()

    call_command("seed_review", scale="demo", random_seed=7, stdout=out)

    campaigns = Campaign.objects.annotate(
        seats=Count("applications", filter=Q(applications__status__in=["pending", "approved"])),
        applications_total=Count("applications"),
    )
    assert campaigns.count() == 20
    statuses = [c.status for c in campaigns]
    assert statuses.count("active") == 16
    assert statuses.count("draft") == 2
    assert statuses.count("closed") == 2
    now = timezone.now()
    for campaign in campaigns:
        assert campaign.applicant_count == campaign.seats <= campaign.max_reviewers
        assert campaign.title and campaign.brand and campaign.category
        assert (campaign.deadline > now) == (campaign.status != "closed")
        assert campaign.created_at < campaign.deadline
        if campaign.status == "draft":
            assert campaign.applications_total == 0
    assert Application.objects.exists()
    assert not Application.objects.filter(status="pending", decided_at__isnull=False).exists()
    assert not Application.objects.filter(campaign__status="closed", status="pending").exists()
    output = out.getvalue()
    assert "20 campaigns" in output
    assert "s (copy" in output


def test_seeded_campaigns_are_served_by_the_api(client_for):
    UserFactory.create_batch(3)
    call_command("seed_review", scale="demo", stdout=StringIO())
    response = client_for(None).get("/api/review/campaigns", {"per_page": 100})
    assert response.status_code == 200
    assert response.json()["count"] == 16


def test_seeding_twice_adds_another_batch_with_fresh_ids():
    UserFactory.create_batch(3)
    call_command("seed_review", scale="demo", stdout=StringIO())
    call_command("seed_review", scale="demo", stdout=StringIO())
    assert Campaign.objects.count() == 40
    created = Campaign.objects.create(
        title="after", brand="b", category="c", reward=0, max_reviewers=1, deadline=timezone.now()
    )
    assert created.pk > max(Campaign.objects.exclude(pk=created.pk).values_list("pk", flat=True))
