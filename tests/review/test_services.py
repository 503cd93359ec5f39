"""review.services rules that the HTTP tests don't reach directly."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from review import services
from review.models import Application, Campaign
from softfactory.api import Conflict, Invalid
from tests.review.factories import ApplicationFactory, CampaignFactory

pytestmark = pytest.mark.django_db


def test_campaigns_close_by_themselves_once_their_deadline_has_come():
    now = timezone.now()
    due = CampaignFactory.create(deadline=now - timedelta(minutes=1))
    exactly_now = CampaignFactory.create(deadline=now)
    running = CampaignFactory.create(deadline=now + timedelta(minutes=1))
    draft = CampaignFactory.create(status=Campaign.Status.DRAFT, deadline=now - timedelta(days=1))

    closed = services.campaigns_close_past_deadline(now=now)

    assert closed == 2
    statuses = dict(Campaign.objects.values_list("pk", "status"))
    assert statuses == {due.pk: "closed", exactly_now.pk: "closed", running.pk: "active", draft.pk: "draft"}
    assert services.campaigns_close_past_deadline(now=now) == 0


def test_a_campaign_closed_at_its_deadline_refuses_applicants_as_closed(user):
    campaign = CampaignFactory.create(deadline=timezone.now() - timedelta(seconds=5))
    services.campaigns_close_past_deadline(now=timezone.now())
    with pytest.raises(Conflict) as refused:
        services.campaign_apply(campaign_id=campaign.pk, user=user, message="")
    assert refused.value.code == "campaign_closed"


def test_an_already_applied_user_hears_so_even_when_the_campaign_is_full(user):
    campaign = CampaignFactory.create(max_reviewers=1)
    ApplicationFactory.create(campaign=campaign, user=user)
    with pytest.raises(Conflict) as refused:
        services.campaign_apply(campaign_id=campaign.pk, user=user, message="")
    assert refused.value.code == "already_applied"


def test_a_refused_application_leaves_the_seat_count_alone(user):
    campaign = CampaignFactory.create(max_reviewers=3)
    ApplicationFactory.create(campaign=campaign, user=user)
    with pytest.raises(Conflict):
        services.campaign_apply(campaign_id=campaign.pk, user=user, message="again")
    campaign.refresh_from_db()
    assert campaign.applicant_count == 1


def test_creating_a_campaign_with_a_past_deadline_is_invalid():
    with pytest.raises(Invalid) as refused:
        services.campaign_create(
            title="t",
            brand="b",
            category="c",
            reward=Decimal("0"),
            max_reviewers=1,
            deadline=timezone.now() - timedelta(seconds=1),
        )
    assert refused.value.field == "deadline"
    assert not Campaign.objects.exists()


def test_resending_the_unchanged_past_deadline_of_a_running_campaign_is_fine():
    campaign = CampaignFactory.create(deadline=timezone.now() - timedelta(seconds=1))
    updated = services.campaign_update(campaign_id=campaign.pk, changes={"deadline": campaign.deadline, "title": "T"})
    assert updated.title == "T"


def test_deleting_an_application_gives_its_seat_back_unless_it_was_rejected():
    campaign = CampaignFactory.create()
    pending = ApplicationFactory.create(campaign=campaign)
    rejected = ApplicationFactory.create(campaign=campaign, status=Application.Status.REJECTED)
    ApplicationFactory.create(campaign=campaign, status=Application.Status.APPROVED)

    services.application_delete(application_id=pending.pk)
    services.application_delete(application_id=rejected.pk)

    campaign.refresh_from_db()
    assert campaign.applicant_count == 1
    assert Application.objects.filter(campaign=campaign).count() == 1
