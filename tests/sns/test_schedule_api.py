"""POST /api/sns/schedule (API.md "sns"): scheduling, validation, auth, idempotency."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from platform_core.models import IdempotencyRecord
from sns.models import SNSPost
from tests.platform_core.factories import UserFactory

pytestmark = pytest.mark.django_db

SCHEDULE = "/api/sns/schedule"
UTC_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def utc_z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def in_days(days: float) -> datetime:
    return timezone.now() + timedelta(days=days)


def body(**overrides: object) -> dict[str, object]:
    return {"platform": "twitter", "content": "Kimchi jjigae night is back", **overrides}


# --- success ----------------------------------------------------------------------------


def test_scheduling_a_post_answers_202_with_its_id_status_time_and_location(client_for, user):
    when = in_days(3).astimezone(ZoneInfo("Asia/Seoul"))

    response = client_for(user).post(SCHEDULE, body(scheduled_at=when.isoformat()), format="json")

    assert response.status_code == 202
    answer = response.json()
    assert set(answer) == {"id", "status", "scheduled_at"}
    assert answer["status"] == "scheduled"
    assert answer["scheduled_at"] == utc_z(when)
    assert response["Location"] == f"/api/sns/posts/{answer['id']}"
    post = SNSPost.objects.get(pk=answer["id"])
    assert (post.user, post.platform, post.content, post.scheduled_at) == (
        user,
        "twitter",
        "Kimchi jjigae night is back",
        when,
    )


def test_a_new_post_is_scheduled_with_no_attempts_and_is_due_at_its_scheduled_time(client_for, user):
    response = client_for(user).post(SCHEDULE, body(scheduled_at=in_days(1).isoformat()), format="json")

    post = SNSPost.objects.get(pk=response.json()["id"])
    assert post.status == SNSPost.Status.SCHEDULED
    assert post.attempts == 0
    assert post.next_attempt_at == post.scheduled_at
    assert (post.published_at, post.last_error, post.claim_token) == (None, None, None)


@pytest.mark.parametrize("payload", [body(), body(scheduled_at=None)], ids=["omitted", "null"])
def test_a_post_without_scheduled_at_is_due_now(client_for, user, payload):
    before = timezone.now()

    response = client_for(user).post(SCHEDULE, payload, format="json")

    assert response.status_code == 202
    post = SNSPost.objects.get(pk=response.json()["id"])
    assert before <= post.scheduled_at <= timezone.now()
    assert post.next_attempt_at == post.scheduled_at
    assert UTC_Z.match(response.json()["scheduled_at"])


@pytest.mark.parametrize("platform", ["twitter", "instagram", "facebook", "linkedin", "threads"])
def test_every_documented_platform_is_accepted(client_for, user, platform):
    response = client_for(user).post(SCHEDULE, body(platform=platform), format="json")
    assert response.status_code == 202
    assert SNSPost.objects.get(pk=response.json()["id"]).platform == platform


def test_content_of_exactly_5000_characters_is_accepted_as_written(client_for, user):
    content = "  " + "가" * 4996 + "\n\n"
    response = client_for(user).post(SCHEDULE, body(content=content), format="json")
    assert response.status_code == 202
    assert SNSPost.objects.get(pk=response.json()["id"]).content == content


def test_a_post_364_days_ahead_is_accepted(client_for, user):
    response = client_for(user).post(SCHEDULE, body(scheduled_at=in_days(364).isoformat()), format="json")
    assert response.status_code == 202


def test_fields_the_server_owns_are_ignored_in_the_body(client_for, user):
    payload = body(status="published", attempts=3, published_at=in_days(-1).isoformat(), user=999)

    response = client_for(user).post(SCHEDULE, payload, format="json")

    assert response.status_code == 202
    post = SNSPost.objects.get(pk=response.json()["id"])
    assert (post.status, post.attempts, post.published_at, post.user) == ("scheduled", 0, None, user)


# --- auth and routing -------------------------------------------------------------------


def test_an_anonymous_client_gets_401_with_a_token_challenge(client_for):
    response = client_for(None).post(SCHEDULE, body(), format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert not SNSPost.objects.exists()


def test_an_invalid_token_gets_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = api_client.post(SCHEDULE, body(), format="json")
    assert response.status_code == 401
    assert not SNSPost.objects.exists()


def test_a_trailing_slash_is_404_not_a_redirect(client_for, user):
    response = client_for(user).post(SCHEDULE + "/", body(), format="json")
    assert response.status_code == 404
    assert not SNSPost.objects.exists()


def test_get_on_the_schedule_path_is_405(client_for, user):
    assert client_for(user).get(SCHEDULE).status_code == 405


# --- validation -------------------------------------------------------------------------

INVALID_BODIES = {
    "unknown platform": (body(platform="myspace"), "platform"),
    "platform in the wrong case": (body(platform="Twitter"), "platform"),
    "platform as a number": (body(platform=1), "platform"),
    "platform as a list": (body(platform=["twitter"]), "platform"),
    "platform null": (body(platform=None), "platform"),
    "platform missing": ({"content": "hello"}, "platform"),
    "content missing": ({"platform": "twitter"}, "content"),
    "content empty": (body(content=""), "content"),
    "content whitespace only": (body(content=" \n\t "), "content"),
    "content 5001 characters": (body(content="x" * 5001), "content"),
    "content as a number": (body(content=42), "content"),
    "content as a boolean": (body(content=True), "content"),
    "content as an object": (body(content={"text": "hi"}), "content"),
    "content null": (body(content=None), "content"),
    "content with a NUL character": (body(content="hi\x00there"), "content"),
    "scheduled_at naive": (body(scheduled_at="2030-01-01T09:00:00"), "scheduled_at"),
    "scheduled_at a date only": (body(scheduled_at="2030-01-01"), "scheduled_at"),
    "scheduled_at garbage": (body(scheduled_at="next tuesday"), "scheduled_at"),
    "scheduled_at empty": (body(scheduled_at=""), "scheduled_at"),
    "scheduled_at a number": (body(scheduled_at=1893456000), "scheduled_at"),
    "scheduled_at a boolean": (body(scheduled_at=True), "scheduled_at"),
    "scheduled_at a list": (body(scheduled_at=["2030-01-01T09:00:00Z"]), "scheduled_at"),
    "scheduled_at in year 9999": (body(scheduled_at="9999-12-31T23:59:59Z"), "scheduled_at"),
    "scheduled_at overflowing UTC": (body(scheduled_at="9999-12-31T23:59:59-05:00"), "scheduled_at"),
    "scheduled_at underflowing UTC": (body(scheduled_at="0001-01-01T00:00:00+05:00"), "scheduled_at"),
    "scheduled_at in year 10000": (body(scheduled_at="10000-01-01T00:00:00Z"), "scheduled_at"),
    "scheduled_at with an impossible offset": (body(scheduled_at="2030-01-01T09:00:00+25:00"), "scheduled_at"),
    "scheduled_at on February 30th": (body(scheduled_at="2030-02-30T09:00:00Z"), "scheduled_at"),
}


@pytest.mark.parametrize(("payload", "field"), INVALID_BODIES.values(), ids=INVALID_BODIES.keys())
def test_invalid_input_is_400_naming_the_field_and_saves_nothing(client_for, user, payload, field):
    response = client_for(user).post(SCHEDULE, payload, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not SNSPost.objects.exists()


@pytest.mark.parametrize("raw", ["[1, 2]", '"just a string"', "42", "null", "{not json"])
def test_a_body_that_is_not_a_json_object_is_400(client_for, user, raw):
    response = client_for(user).post(SCHEDULE, raw, content_type="application/json")
    assert response.status_code == 400
    assert not SNSPost.objects.exists()


def test_content_with_a_lone_surrogate_is_400_not_a_server_error(client_for, user):
    # Sent as raw JSON: the test client's own encoder can't write a lone surrogate.
    raw = '{"platform": "twitter", "content": "hi \\ud800 there"}'
    response = client_for(user).post(SCHEDULE, raw, content_type="application/json")
    assert response.status_code == 400
    assert "content" in response.json()
    assert not SNSPost.objects.exists()


def test_a_scheduled_at_in_the_past_is_400_with_the_server_time(client_for, user):
    response = client_for(user).post(SCHEDULE, body(scheduled_at=in_days(-1 / 24).isoformat()), format="json")

    assert response.status_code == 400
    [message] = response.json()["scheduled_at"]
    assert "future" in message
    assert "server time is" in message
    assert not SNSPost.objects.exists()


def test_a_scheduled_at_more_than_365_days_ahead_is_400(client_for, user):
    response = client_for(user).post(SCHEDULE, body(scheduled_at=in_days(365.01).isoformat()), format="json")

    assert response.status_code == 400
    [message] = response.json()["scheduled_at"]
    assert "365 days" in message
    assert not SNSPost.objects.exists()


def test_a_naive_scheduled_at_is_400_asking_for_an_offset(client_for, user):
    naive = in_days(2).replace(tzinfo=None).isoformat()
    response = client_for(user).post(SCHEDULE, body(scheduled_at=naive), format="json")
    assert response.status_code == 400
    assert "offset" in response.json()["scheduled_at"][0]


# --- idempotency ------------------------------------------------------------------------


def test_the_same_idempotency_key_and_body_replays_the_first_answer_and_creates_one_post(client_for, user):
    client = client_for(user)
    payload = body(scheduled_at=in_days(2).isoformat())

    first = client.post(SCHEDULE, payload, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = client.post(SCHEDULE, payload, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert (first.status_code, second.status_code) == (202, 202)
    assert second.json() == first.json()
    assert SNSPost.objects.filter(user=user).count() == 1


def test_the_same_idempotency_key_with_another_body_is_422_and_creates_nothing(client_for, user):
    client = client_for(user)
    client.post(SCHEDULE, body(content="first"), format="json", HTTP_IDEMPOTENCY_KEY="k-2")

    response = client.post(SCHEDULE, body(content="second"), format="json", HTTP_IDEMPOTENCY_KEY="k-2")

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert list(SNSPost.objects.values_list("content", flat=True)) == ["first"]


def test_an_idempotency_key_is_scoped_to_its_user(client_for, user):
    other = UserFactory.create()
    client_for(user).post(SCHEDULE, body(), format="json", HTTP_IDEMPOTENCY_KEY="shared")
    response = client_for(other).post(SCHEDULE, body(), format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert response.status_code == 202
    assert SNSPost.objects.filter(user=other).count() == 1


def test_a_rejected_request_is_not_remembered_under_its_key(client_for, user):
    client = client_for(user)
    bad = client.post(SCHEDULE, body(platform="myspace"), format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    good = client.post(SCHEDULE, body(), format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    assert (bad.status_code, good.status_code) == (400, 202)
    assert IdempotencyRecord.objects.filter(key="k-3").count() == 1


def test_an_over_long_idempotency_key_is_400(client_for, user):
    response = client_for(user).post(SCHEDULE, body(), format="json", HTTP_IDEMPOTENCY_KEY="k" * 256)
    assert response.status_code == 400
    assert not SNSPost.objects.exists()
