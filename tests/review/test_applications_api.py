"""Applications over HTTP (API.md "review"): apply, list my applications, decide."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from review.models import Application, Campaign
from tests.platform_core.factories import UserFactory
from tests.review.factories import ApplicationFactory, CampaignFactory

pytestmark = pytest.mark.django_db

APPLICATIONS = "/api/review/applications"
UTC_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def apply_url(campaign_id: object) -> str:
    return f"/api/review/campaigns/{campaign_id}/applications"


def seats_taken(campaign: Campaign) -> int:
    campaign.refresh_from_db(fields=["applicant_count"])
    return campaign.applicant_count


# --- apply ------------------------------------------------------------------------------


def test_a_user_applies_and_takes_a_seat(client_for, user):
    campaign = CampaignFactory.create(max_reviewers=3)

    response = client_for(user).post(apply_url(campaign.pk), {"message": "Pick me"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "campaign_id", "message", "status", "created_at"}
    assert (body["campaign_id"], body["message"], body["status"]) == (campaign.pk, "Pick me", "pending")
    assert UTC_Z.match(body["created_at"])
    application = Application.objects.get(pk=body["id"])
    assert (application.user, application.campaign) == (user, campaign)
    assert seats_taken(campaign) == 1


def test_the_message_may_be_left_out(client_for, user):
    campaign = CampaignFactory.create()
    response = client_for(user).post(apply_url(campaign.pk), {}, format="json")
    assert response.status_code == 201
    assert response.json()["message"] == ""


def test_the_new_applicant_count_is_public_at_once(client_for, user):
    campaign = CampaignFactory.create()
    client_for(user).post(apply_url(campaign.pk), {"message": "hi"}, format="json")
    detail = client_for(None).get(f"/api/review/campaigns/{campaign.pk}").json()
    assert detail["applicant_count"] == 1


def test_applying_needs_credentials(client_for):
    campaign = CampaignFactory.create()
    response = client_for(None).post(apply_url(campaign.pk), {"message": "hi"}, format="json")
    assert response.status_code == 401
    assert seats_taken(campaign) == 0


@pytest.mark.parametrize("campaign_id", ["draft", "987654", "9" * 30])
def test_applying_to_a_draft_or_unknown_campaign_is_404(client_for, user, campaign_id):
    draft = CampaignFactory.create(status=Campaign.Status.DRAFT)
    target = draft.pk if campaign_id == "draft" else campaign_id
    response = client_for(user).post(apply_url(target), {"message": "hi"}, format="json")
    assert response.status_code == 404
    assert set(response.json()) == {"detail", "code"}
    assert not Application.objects.exists()
    assert seats_taken(draft) == 0


def test_applying_twice_is_409_already_applied(client_for, user):
    campaign = CampaignFactory.create()
    client = client_for(user)
    assert client.post(apply_url(campaign.pk), {"message": "1"}, format="json").status_code == 201

    response = client.post(apply_url(campaign.pk), {"message": "2"}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "already_applied"
    assert Application.objects.filter(user=user).count() == 1
    assert seats_taken(campaign) == 1


def test_a_rejected_applicant_cannot_apply_again(client_for, user):
    campaign = CampaignFactory.create()
    ApplicationFactory.create(campaign=campaign, user=user, status=Application.Status.REJECTED)
    response = client_for(user).post(apply_url(campaign.pk), {"message": "again"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "already_applied"
    assert seats_taken(campaign) == 0


def test_applying_to_a_full_campaign_is_409_campaign_full(client_for, user):
    campaign = CampaignFactory.create(max_reviewers=2)
    ApplicationFactory.create(campaign=campaign)
    ApplicationFactory.create(campaign=campaign, status=Application.Status.APPROVED)

    response = client_for(user).post(apply_url(campaign.pk), {"message": "hi"}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "campaign_full"
    assert seats_taken(campaign) == 2
    assert not Application.objects.filter(user=user).exists()


def test_applying_to_a_closed_campaign_is_409_campaign_closed(client_for, user):
    campaign = CampaignFactory.create(status=Campaign.Status.CLOSED)
    response = client_for(user).post(apply_url(campaign.pk), {"message": "hi"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "campaign_closed"
    assert seats_taken(campaign) == 0


def test_applying_after_the_deadline_is_409_deadline_passed(client_for, user):
    campaign = CampaignFactory.create(deadline=timezone.now() - timedelta(seconds=1))  # not closed by the job yet
    response = client_for(user).post(apply_url(campaign.pk), {"message": "hi"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "deadline_passed"
    assert seats_taken(campaign) == 0


def test_a_rejection_frees_a_seat_for_the_next_applicant(client_for, staff_user, user):
    campaign = CampaignFactory.create(max_reviewers=1)
    first = ApplicationFactory.create(campaign=campaign)
    client = client_for(user)
    assert client.post(apply_url(campaign.pk), {"message": "hi"}, format="json").json()["code"] == "campaign_full"

    client_for(staff_user).patch(f"{APPLICATIONS}/{first.pk}", {"status": "rejected"}, format="json")
    response = client.post(apply_url(campaign.pk), {"message": "hi"}, format="json")

    assert response.status_code == 201
    assert seats_taken(campaign) == 1


@pytest.mark.parametrize("message", ["m" * 5001, {"text": "hi"}, ["hi"], None, "nul\x00"])
def test_a_bad_message_is_400(client_for, user, message):
    campaign = CampaignFactory.create()
    response = client_for(user).post(apply_url(campaign.pk), {"message": message}, format="json")
    assert response.status_code == 400
    assert "message" in response.json()
    assert seats_taken(campaign) == 0


def test_get_on_the_apply_path_is_not_allowed(client_for, user):
    campaign = CampaignFactory.create()
    assert client_for(user).get(apply_url(campaign.pk)).status_code == 405


# --- my applications --------------------------------------------------------------------


def test_a_user_lists_only_their_own_applications_newest_first(client_for, user, other_user):
    now = timezone.now()
    older = ApplicationFactory.create(user=user, created_at=now - timedelta(days=2))
    newer = ApplicationFactory.create(user=user, created_at=now - timedelta(days=1), status=Application.Status.APPROVED)
    ApplicationFactory.create(user=other_user)

    response = client_for(user).get(APPLICATIONS)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [item["id"] for item in body["results"]] == [newer.pk, older.pk]
    item = body["results"][0]
    assert set(item) == {"id", "campaign_id", "message", "status", "created_at"}
    assert (item["campaign_id"], item["status"]) == (newer.campaign_id, "approved")
    assert UTC_Z.match(item["created_at"])


def test_staff_also_see_only_their_own_applications(client_for, staff_user, user):
    ApplicationFactory.create(user=user)
    response = client_for(staff_user).get(APPLICATIONS)
    assert response.json()["count"] == 0


def test_listing_applications_needs_credentials(client_for):
    assert client_for(None).get(APPLICATIONS).status_code == 401


@pytest.mark.parametrize("params", [{"page": 0}, {"per_page": 101}, {"per_page": "x"}])
def test_application_pages_are_bounded(client_for, user, params):
    assert client_for(user).get(APPLICATIONS, params).status_code == 400


def test_my_applications_cost_the_same_queries_for_3_and_30_rows(client_for, user):
    client = client_for(user)
    client.get(APPLICATIONS)  # warm-up: the token lands in its cache
    measured = []
    for batch in (3, 27):
        ApplicationFactory.create_batch(batch, user=user)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(APPLICATIONS, {"per_page": 100})
        on_applications = [q for q in queries.captured_queries if "review_application" in q["sql"]]
        assert len(on_applications) == 2  # count + page
        measured.append((len(response.json()["results"]), len(queries.captured_queries)))
    assert [rows for rows, _ in measured] == [3, 30]
    assert measured[0][1] == measured[1][1]


# --- decide -----------------------------------------------------------------------------


def test_staff_approve_an_application_and_it_keeps_its_seat(client_for, staff_user):
    application = ApplicationFactory.create()

    response = client_for(staff_user).patch(f"{APPLICATIONS}/{application.pk}", {"status": "approved"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["status"]) == (application.pk, "approved")
    application.refresh_from_db()
    assert application.status == "approved"
    assert application.decided_at is not None
    assert seats_taken(application.campaign) == 1


def test_staff_reject_an_application_and_its_seat_is_freed(client_for, staff_user):
    application = ApplicationFactory.create()
    ApplicationFactory.create(campaign=application.campaign)
    response = client_for(staff_user).patch(f"{APPLICATIONS}/{application.pk}", {"status": "rejected"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    assert seats_taken(application.campaign) == 1


def test_the_applicant_sees_the_decision(client_for, staff_user, user):
    application = ApplicationFactory.create(user=user)
    client_for(staff_user).patch(f"{APPLICATIONS}/{application.pk}", {"status": "approved"}, format="json")
    assert client_for(user).get(APPLICATIONS).json()["results"][0]["status"] == "approved"


@pytest.mark.parametrize(
    ("first", "second"), [("approved", "rejected"), ("rejected", "approved"), ("approved", "approved")]
)
def test_deciding_twice_is_409_already_decided(client_for, staff_user, first, second):
    application = ApplicationFactory.create()
    client = client_for(staff_user)
    assert client.patch(f"{APPLICATIONS}/{application.pk}", {"status": first}, format="json").status_code == 200
    seats = seats_taken(application.campaign)

    response = client.patch(f"{APPLICATIONS}/{application.pk}", {"status": second}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "already_decided"
    application.refresh_from_db()
    assert application.status == first
    assert seats_taken(application.campaign) == seats


@pytest.mark.parametrize("body", [{"status": "pending"}, {"status": "maybe"}, {"status": 1}, {}, {"status": None}])
def test_a_decision_other_than_approved_or_rejected_is_400(client_for, staff_user, body):
    application = ApplicationFactory.create()
    response = client_for(staff_user).patch(f"{APPLICATIONS}/{application.pk}", body, format="json")
    assert response.status_code == 400
    assert "status" in response.json()
    application.refresh_from_db()
    assert application.status == "pending"


def test_deciding_needs_credentials(client_for):
    application = ApplicationFactory.create()
    response = client_for(None).patch(f"{APPLICATIONS}/{application.pk}", {"status": "approved"}, format="json")
    assert response.status_code == 401
    application.refresh_from_db()
    assert application.status == "pending"


def test_a_user_deciding_their_own_application_gets_403(client_for, user):
    application = ApplicationFactory.create(user=user)
    response = client_for(user).patch(f"{APPLICATIONS}/{application.pk}", {"status": "approved"}, format="json")
    assert response.status_code == 403
    application.refresh_from_db()
    assert application.status == "pending"


def test_a_user_deciding_someone_elses_application_gets_404(client_for, user):
    application = ApplicationFactory.create(user=UserFactory.create())
    response = client_for(user).patch(f"{APPLICATIONS}/{application.pk}", {"status": "approved"}, format="json")
    assert response.status_code == 404
    application.refresh_from_db()
    assert application.status == "pending"


@pytest.mark.parametrize("application_id", ["987654", "9" * 30])
def test_deciding_an_unknown_application_is_404(client_for, staff_user, application_id):
    response = client_for(staff_user).patch(f"{APPLICATIONS}/{application_id}", {"status": "approved"}, format="json")
    assert response.status_code == 404
