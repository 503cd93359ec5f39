"""The SNS post admin: a fixed query cost per changelist, search, the cancel action, read-only state."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from sns.models import SNSPost
from tests.platform_core.factories import StaffFactory, UserFactory
from tests.sns.factories import SNSPostFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/sns/snspost/"


@pytest.fixture
def admin(db) -> Client:
    client = Client()
    client.force_login(StaffFactory.create(is_superuser=True))
    return client


def changelist_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(CHANGELIST)
    assert response.status_code == 200
    return len(queries)


def test_a_changelist_of_100_rows_costs_the_same_queries_as_one_of_3(admin):
    users = UserFactory.create_batch(3)
    for user in users:
        SNSPostFactory.create(user=user)
    few = changelist_queries(admin)

    SNSPostFactory.create_batch(97, user=users[0], published=True)
    many = changelist_queries(admin)

    assert SNSPost.objects.count() == 100
    assert many == few


def test_the_changelist_shows_the_owner_and_filters_by_status_and_platform(admin):
    mine = SNSPostFactory.create(platform="threads", published=True)
    SNSPostFactory.create(platform="twitter")

    response = admin.get(CHANGELIST, {"status": "published", "platform": "threads"})

    assert response.status_code == 200
    assert [row.pk for row in response.context["cl"].result_list] == [mine.pk]
    assert mine.user.email in response.content.decode()


def test_the_changelist_searches_content_and_owner_email(admin):
    by_email = SNSPostFactory.create(user=UserFactory.create(email="findme@example.com"))
    by_content = SNSPostFactory.create(content="Bibimbap masterclass")
    SNSPostFactory.create()

    found_by_email = admin.get(CHANGELIST, {"q": "findme@"}).context["cl"].result_list
    found_by_content = admin.get(CHANGELIST, {"q": "masterclass"}).context["cl"].result_list

    assert [p.pk for p in found_by_email] == [by_email.pk]
    assert [p.pk for p in found_by_content] == [by_content.pk]


def test_the_cancel_action_cancels_only_the_scheduled_posts_selected(admin):
    scheduled = SNSPostFactory.create()
    published = SNSPostFactory.create(published=True)
    untouched = SNSPostFactory.create()

    response = admin.post(
        CHANGELIST,
        {"action": "cancel_scheduled", "_selected_action": [scheduled.pk, published.pk]},
        follow=True,
    )

    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert "Cancelled 1 scheduled post(s)." in messages
    assert any("Left 1 post(s) unchanged" in m for m in messages)
    statuses = dict(SNSPost.objects.values_list("pk", "status"))
    assert statuses == {scheduled.pk: "cancelled", published.pk: "published", untouched.pk: "scheduled"}


def test_the_change_form_shows_state_and_claim_fields_read_only(admin):
    post = SNSPostFactory.create(publishing=True)

    response = admin.get(f"{CHANGELIST}{post.pk}/change/")

    assert response.status_code == 200
    form_fields = set(response.context["adminform"].form.fields)
    assert form_fields == {"platform", "content"}
    assert str(post.claim_token) in response.content.decode()


def test_posts_cannot_be_added_in_the_admin(admin):
    assert admin.get(f"{CHANGELIST}add/").status_code == 403


def test_a_non_staff_user_cannot_open_the_changelist(user):
    client = Client()
    client.force_login(user)
    response = client.get(CHANGELIST)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
