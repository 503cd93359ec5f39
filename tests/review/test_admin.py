"""The Django admin for campaigns and applications: fixed query cost, writes through services."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from review.models import Application, Campaign
from tests.platform_core.factories import StaffFactory
from tests.review.factories import ApplicationFactory, CampaignFactory

pytestmark = pytest.mark.django_db

CAMPAIGNS = "/admin/review/campaign/"
APPLICATIONS = "/admin/review/application/"


@pytest.fixture
def admin(db) -> Client:
    client = Client()
    client.force_login(StaffFactory.create(is_superuser=True))
    return client


def changelist_cost(client: Client, url: str, rows: int) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    assert response.context["cl"].result_count == rows
    assert len(response.context["cl"].result_list) == rows
    return len(queries.captured_queries)


def test_the_campaign_changelist_costs_the_same_for_10_and_100_rows(admin):
    admin.get(CAMPAIGNS)  # warm-up: session and content types
    CampaignFactory.create_batch(10)
    ten = changelist_cost(admin, CAMPAIGNS, 10)
    CampaignFactory.create_batch(90, category="food", status=Campaign.Status.DRAFT)
    assert changelist_cost(admin, CAMPAIGNS, 100) == ten


def test_the_application_changelist_costs_the_same_for_10_and_100_rows(admin):
    admin.get(APPLICATIONS)
    ApplicationFactory.create_batch(10)
    ten = changelist_cost(admin, APPLICATIONS, 10)
    ApplicationFactory.create_batch(90)
    assert changelist_cost(admin, APPLICATIONS, 100) == ten


def test_the_changelists_search_and_filter(admin):
    CampaignFactory.create(title="Cushion foundation", status=Campaign.Status.DRAFT)
    CampaignFactory.create(title="Lip tint")
    response = admin.get(CAMPAIGNS, {"q": "cushion", "status__exact": "draft"})
    assert [c.title for c in response.context["cl"].result_list] == ["Cushion foundation"]
    application = ApplicationFactory.create()
    response = admin.get(APPLICATIONS, {"q": application.user.email, "status__exact": "pending"})
    assert list(response.context["cl"].result_list) == [application]


def test_the_activate_action_publishes_drafts_but_not_past_their_deadline(admin):
    ready = CampaignFactory.create(status=Campaign.Status.DRAFT)
    expired = CampaignFactory.create(status=Campaign.Status.DRAFT, deadline=timezone.now() - timedelta(days=1))

    response = admin.post(CAMPAIGNS, {"action": "activate", "_selected_action": [ready.pk, expired.pk]}, follow=True)

    assert response.status_code == 200
    ready.refresh_from_db()
    expired.refresh_from_db()
    assert (ready.status, expired.status) == ("active", "draft")
    texts = [str(m) for m in response.context["messages"]]
    assert any("1 campaign(s) activated" in t for t in texts)
    assert any(f"#{expired.pk}" in t for t in texts)


def test_the_close_action_closes_campaigns(admin):
    campaigns = CampaignFactory.create_batch(2)
    admin.post(CAMPAIGNS, {"action": "close", "_selected_action": [c.pk for c in campaigns]})
    assert set(Campaign.objects.values_list("status", flat=True)) == {"closed"}


def test_the_approve_and_reject_actions_keep_the_seat_count(admin):
    campaign = CampaignFactory.create()
    approve, reject = ApplicationFactory.create_batch(2, campaign=campaign)
    decided = ApplicationFactory.create(campaign=campaign, status=Application.Status.APPROVED)

    admin.post(APPLICATIONS, {"action": "approve", "_selected_action": [approve.pk]})
    response = admin.post(APPLICATIONS, {"action": "reject", "_selected_action": [reject.pk, decided.pk]}, follow=True)

    statuses = dict(Application.objects.values_list("pk", "status"))
    assert statuses == {approve.pk: "approved", reject.pk: "rejected", decided.pk: "approved"}
    campaign.refresh_from_db()
    assert campaign.applicant_count == 2
    assert any(f"#{decided.pk}" in str(m) for m in response.context["messages"])


def test_deleting_applications_in_the_admin_frees_their_seats(admin):
    campaign = CampaignFactory.create()
    doomed = ApplicationFactory.create_batch(2, campaign=campaign)
    ApplicationFactory.create(campaign=campaign)
    admin.post(APPLICATIONS, {"action": "delete_selected", "_selected_action": [a.pk for a in doomed], "post": "yes"})
    campaign.refresh_from_db()
    assert campaign.applicant_count == 1
    assert Application.objects.count() == 1


def test_applications_cannot_be_added_in_the_admin(admin):
    assert admin.get(APPLICATIONS + "add/").status_code == 403


def _form(**overrides) -> dict:
    deadline = timezone.now() + timedelta(days=10)
    data = {
        "title": "Admin campaign",
        "brand": "Sulwhasoo",
        "category": "beauty",
        "description": "",
        "status": "draft",
        "reward": "1000.00",
        "currency": "KRW",
        "max_reviewers": "5",
        "deadline_0": deadline.strftime("%Y-%m-%d"),
        "deadline_1": deadline.strftime("%H:%M:%S"),
    }
    data.update(overrides)
    return data


def test_staff_add_a_campaign_in_the_admin(admin):
    response = admin.post(CAMPAIGNS + "add/", _form())
    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert (campaign.title, campaign.status, campaign.applicant_count) == ("Admin campaign", "draft", 0)


def test_the_admin_form_refuses_fewer_seats_than_applicants(admin):
    campaign = CampaignFactory.create(max_reviewers=5, deadline=timezone.now() + timedelta(days=10))
    ApplicationFactory.create_batch(3, campaign=campaign)
    response = admin.post(
        f"{CAMPAIGNS}{campaign.pk}/change/",
        _form(
            title=campaign.title,
            brand=campaign.brand,
            category=campaign.category,
            description=campaign.description,
            status=campaign.status,
            max_reviewers="2",
            deadline_0=campaign.deadline.strftime("%Y-%m-%d"),
            deadline_1=campaign.deadline.strftime("%H:%M:%S"),
        ),
    )
    assert response.status_code == 200
    assert "max_reviewers" in response.context["adminform"].form.errors
    campaign.refresh_from_db()
    assert campaign.max_reviewers == 5


def test_a_changed_campaign_is_saved_through_the_service(admin):
    campaign = CampaignFactory.create(max_reviewers=5, deadline=timezone.now() + timedelta(days=10))
    response = admin.post(
        f"{CAMPAIGNS}{campaign.pk}/change/",
        _form(
            title="Renamed",
            status="closed",
            deadline_0=campaign.deadline.strftime("%Y-%m-%d"),
            deadline_1=campaign.deadline.strftime("%H:%M:%S"),
        ),
    )
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.title, campaign.status, campaign.max_reviewers) == ("Renamed", "closed", 5)
