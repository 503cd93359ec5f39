"""GET /api/sns/posts, GET /api/sns/posts/{id}, POST /api/sns/posts/{id}/cancel (API.md "sns")."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sns.models import SNSPost
from tests.sns.factories import SNSPostFactory

pytestmark = pytest.mark.django_db

POSTS = "/api/sns/posts"
UTC_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
ITEM_FIELDS = {"id", "platform", "content", "status", "scheduled_at", "published_at", "attempts", "last_error"}


def detail(post_id: object) -> str:
    return f"{POSTS}/{post_id}"


def cancel(post_id: object) -> str:
    return f"{POSTS}/{post_id}/cancel"


def ids(response) -> list[int]:
    return [item["id"] for item in response.json()["results"]]


# --- list -------------------------------------------------------------------------------


def test_the_list_shows_only_the_callers_posts_newest_scheduled_first(client_for, user, other_user):
    now = timezone.now()
    soon = SNSPostFactory.create(user=user, scheduled_at=now + timedelta(hours=1))
    later = SNSPostFactory.create(user=user, scheduled_at=now + timedelta(days=2))
    past = SNSPostFactory.create(user=user, published=True)
    SNSPostFactory.create(user=other_user)

    response = client_for(user).get(POSTS)

    assert response.status_code == 200
    assert response.json()["count"] == 3
    assert ids(response) == [later.pk, soon.pk, past.pk]


def test_posts_scheduled_at_the_same_time_are_ordered_by_id_ascending(client_for, user):
    when = timezone.now() + timedelta(days=1)
    posts = [SNSPostFactory.create(user=user, scheduled_at=when) for _ in range(3)]
    assert ids(client_for(user).get(POSTS)) == sorted(p.pk for p in posts)


def test_a_list_item_has_the_documented_fields_with_nulls_when_there_is_none(client_for, user):
    post = SNSPostFactory.create(user=user, platform="threads", content="hello")

    [item] = client_for(user).get(POSTS).json()["results"]

    assert set(item) == ITEM_FIELDS
    assert item["id"] == post.pk
    assert (item["platform"], item["content"], item["status"], item["attempts"]) == ("threads", "hello", "scheduled", 0)
    assert (item["published_at"], item["last_error"]) == (None, None)
    assert UTC_Z.match(item["scheduled_at"])


def test_a_published_post_shows_when_it_went_out_and_its_attempts(client_for, user):
    post = SNSPostFactory.create(user=user, published=True, attempts=2)

    [item] = client_for(user).get(POSTS).json()["results"]

    assert item["status"] == "published"
    assert item["attempts"] == 2
    assert post.published_at is not None
    assert item["published_at"] == post.published_at.isoformat().replace("+00:00", "Z")


def test_a_failed_post_says_why(client_for, user):
    SNSPostFactory.create(user=user, failed=True, last_error="HTTP 401: account token revoked")
    [item] = client_for(user).get(POSTS).json()["results"]
    assert (item["status"], item["last_error"]) == ("failed", "HTTP 401: account token revoked")


def test_an_empty_last_error_is_shown_as_null(client_for, user):
    SNSPostFactory.create(user=user, published=True, last_error="")
    [item] = client_for(user).get(POSTS).json()["results"]
    assert item["last_error"] is None


@pytest.mark.parametrize("status", ["scheduled", "publishing", "published", "failed", "cancelled"])
def test_the_list_filters_by_status(client_for, user, status):
    posts = {
        "scheduled": SNSPostFactory.create(user=user),
        "publishing": SNSPostFactory.create(user=user, publishing=True),
        "published": SNSPostFactory.create(user=user, published=True),
        "failed": SNSPostFactory.create(user=user, failed=True),
        "cancelled": SNSPostFactory.create(user=user, cancelled=True),
    }

    response = client_for(user).get(POSTS, {"status": status})

    assert response.status_code == 200
    assert ids(response) == [posts[status].pk]
    assert response.json()["count"] == 1


@pytest.mark.parametrize("value", ["draft", "SCHEDULED", "x" * 500, "scheduled,published"])
def test_an_unknown_status_filter_is_400(client_for, user, value):
    response = client_for(user).get(POSTS, {"status": value})
    assert response.status_code == 400
    assert "status" in response.json()


def test_an_empty_status_filter_and_unknown_parameters_are_ignored(client_for, user):
    SNSPostFactory.create_batch(2, user=user)
    response = client_for(user).get(POSTS, {"status": "", "platform": "myspace", "ordering": "?"})
    assert response.status_code == 200
    assert response.json()["count"] == 2


def test_the_list_is_paginated_with_an_exact_count_and_absolute_links(client_for, user):
    SNSPostFactory.create_batch(5, user=user)

    body = client_for(user).get(POSTS, {"page": 2, "per_page": 2}).json()

    assert (body["count"], body["page"], body["per_page"], len(body["results"])) == (5, 2, 2, 2)
    assert body["next"].startswith("http://testserver/api/sns/posts?")
    assert "page=3" in body["next"]
    assert "page=1" in body["previous"]


def test_pages_cover_every_post_once(client_for, user):
    posts = SNSPostFactory.create_batch(5, user=user)
    client = client_for(user)
    seen = [pk for page in (1, 2, 3) for pk in ids(client.get(POSTS, {"page": page, "per_page": 2}))]
    assert sorted(seen) == sorted(p.pk for p in posts)


def test_a_page_past_the_end_is_200_and_empty(client_for, user):
    SNSPostFactory.create(user=user)
    body = client_for(user).get(POSTS, {"page": 99}).json()
    assert (body["count"], body["results"], body["next"]) == (1, [], None)


@pytest.mark.parametrize(
    "params",
    [
        {"page": 0},
        {"page": -1},
        {"page": "abc"},
        {"page": "1.5"},
        {"page": "99999999999999999999999"},
        {"per_page": 0},
        {"per_page": 101},
        {"per_page": "ten"},
    ],
)
def test_out_of_bounds_pagination_is_400(client_for, user, params):
    response = client_for(user).get(POSTS, params)
    assert response.status_code == 400
    assert set(response.json()) & {"page", "per_page"}


def test_per_page_100_is_allowed(client_for, user):
    assert client_for(user).get(POSTS, {"per_page": 100}).status_code == 200


@pytest.mark.parametrize("rows", [3, 30])
def test_the_list_reads_posts_with_two_queries_whatever_the_page_size(client_for, user, rows):
    SNSPostFactory.create_batch(rows, user=user, published=True)
    client = client_for(user)

    with CaptureQueriesContext(connection) as queries:
        response = client.get(POSTS, {"per_page": 100})

    assert len(response.json()["results"]) == rows
    # the exact count and one page query; never one per row
    post_queries = [q["sql"] for q in queries.captured_queries if "sns_snspost" in q["sql"]]
    assert len(post_queries) == 2
    assert "COUNT(*)" in post_queries[0]


def test_3_and_30_rows_cost_the_same_queries(client_for, user, other_user):
    SNSPostFactory.create_batch(3, user=user)
    SNSPostFactory.create_batch(30, user=other_user)
    counts = []
    for owner in (user, other_user):
        client = client_for(owner)
        with CaptureQueriesContext(connection) as queries:
            client.get(POSTS, {"per_page": 50})
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_an_anonymous_client_gets_401_on_the_list(client_for):
    response = client_for(None).get(POSTS)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_the_list_with_a_trailing_slash_is_404(client_for, user):
    assert client_for(user).get(POSTS + "/").status_code == 404


# --- detail -----------------------------------------------------------------------------


def test_the_owner_reads_a_post(client_for, user):
    post = SNSPostFactory.create(user=user, content="Read me")

    response = client_for(user).get(detail(post.pk))

    assert response.status_code == 200
    assert set(response.json()) == ITEM_FIELDS
    assert (response.json()["id"], response.json()["content"]) == (post.pk, "Read me")


def test_another_user_gets_404_for_a_post(client_for, other_user):
    post = SNSPostFactory.create()
    response = client_for(other_user).get(detail(post.pk))
    assert response.status_code == 404
    assert response.json() == {"detail": "No such post.", "code": "post_not_found"}


def test_staff_get_404_for_someone_elses_post(client_for, staff_user):
    post = SNSPostFactory.create()
    response = client_for(staff_user).get(detail(post.pk))
    assert response.status_code == 404
    assert response.json()["code"] == "post_not_found"


@pytest.mark.parametrize("post_id", ["999999", "abc", "1.5", "-1", "0", "99999999999999999999999", "%C2%B2"])
def test_an_unknown_or_malformed_id_is_a_json_404(client_for, user, post_id):
    response = client_for(user).get(detail(post_id))
    assert response.status_code == 404
    assert response.json()["code"] == "post_not_found"


def test_an_anonymous_client_gets_401_on_a_post(client_for):
    post = SNSPostFactory.create()
    assert client_for(None).get(detail(post.pk)).status_code == 401


def test_a_post_with_a_trailing_slash_is_404(client_for, user):
    post = SNSPostFactory.create(user=user)
    assert client_for(user).get(detail(post.pk) + "/").status_code == 404


# --- cancel -----------------------------------------------------------------------------


def test_the_owner_cancels_a_scheduled_post(client_for, user):
    post = SNSPostFactory.create(user=user)

    response = client_for(user).post(cancel(post.pk))

    assert response.status_code == 200
    assert set(response.json()) == ITEM_FIELDS
    assert (response.json()["id"], response.json()["status"]) == (post.pk, "cancelled")
    post.refresh_from_db()
    assert post.status == SNSPost.Status.CANCELLED


def test_a_cancelled_post_is_listed_as_cancelled(client_for, user):
    post = SNSPostFactory.create(user=user)
    client = client_for(user)
    client.post(cancel(post.pk))
    assert ids(client.get(POSTS, {"status": "cancelled"})) == [post.pk]


@pytest.mark.parametrize("trait", ["published", "cancelled", "publishing", "failed"])
def test_cancelling_a_post_that_is_not_scheduled_is_409_and_changes_nothing(client_for, user, trait):
    post = SNSPostFactory.create(user=user, **{trait: True})

    response = client_for(user).post(cancel(post.pk))

    assert response.status_code == 409
    assert response.json()["code"] == "post_not_cancellable"
    assert trait in response.json()["detail"]
    post.refresh_from_db()
    assert post.status == trait


def test_cancelling_twice_is_409_the_second_time(client_for, user):
    post = SNSPostFactory.create(user=user)
    client = client_for(user)
    assert client.post(cancel(post.pk)).status_code == 200
    assert client.post(cancel(post.pk)).status_code == 409


def test_another_user_gets_404_when_cancelling_and_the_post_stays_scheduled(client_for, other_user):
    post = SNSPostFactory.create()
    response = client_for(other_user).post(cancel(post.pk))
    assert response.status_code == 404
    assert response.json()["code"] == "post_not_found"
    post.refresh_from_db()
    assert post.status == SNSPost.Status.SCHEDULED


def test_staff_get_404_when_cancelling_someone_elses_post(client_for, staff_user):
    post = SNSPostFactory.create()
    assert client_for(staff_user).post(cancel(post.pk)).status_code == 404
    post.refresh_from_db()
    assert post.status == SNSPost.Status.SCHEDULED


def test_cancelling_an_unknown_or_malformed_id_is_404(client_for, user):
    client = client_for(user)
    assert client.post(cancel(123456789)).status_code == 404
    assert client.post(cancel("abc")).status_code == 404
    assert client.post(cancel("9" * 30)).status_code == 404


def test_an_anonymous_client_gets_401_when_cancelling(client_for):
    post = SNSPostFactory.create()
    assert client_for(None).post(cancel(post.pk)).status_code == 401
    post.refresh_from_db()
    assert post.status == SNSPost.Status.SCHEDULED


def test_cancel_with_a_trailing_slash_is_404(client_for, user):
    post = SNSPostFactory.create(user=user)
    assert client_for(user).post(cancel(post.pk) + "/").status_code == 404
    post.refresh_from_db()
    assert post.status == SNSPost.Status.SCHEDULED


def test_get_on_cancel_is_405(client_for, user):
    post = SNSPostFactory.create(user=user)
    assert client_for(user).get(cancel(post.pk)).status_code == 405
