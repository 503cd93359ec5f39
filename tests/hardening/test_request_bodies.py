"""Bad bodies get a clear 4xx and change nothing (API.md: never a 500 for client input)."""

from __future__ import annotations

import pytest

from platform_core.models import User

pytestmark = pytest.mark.django_db

REGISTER = "/api/auth/register"


def test_a_body_over_the_limit_is_413(api_client, settings):
    settings.API_MAX_BODY_BYTES = 1000
    body = '{"email": "big@example.com", "password": "a-long-pass-phrase", "name": "' + "x" * 2000 + '"}'
    response = api_client.post(REGISTER, body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert not User.objects.exists()


def test_a_body_without_a_content_length_over_the_limit_is_413(client_for, user, settings):
    from softfactory.parsers import SafeJSONParser

    settings.API_MAX_BODY_BYTES = 100
    import io

    from rest_framework.exceptions import APIException

    with pytest.raises(APIException) as caught:
        SafeJSONParser().parse(io.BytesIO(b'{"a": "' + b"y" * 500 + b'"}'), parser_context={})
    assert caught.value.status_code == 413


def test_deeply_nested_json_is_400_not_a_recursion_error(api_client):
    body = "[" * 100_000 + "]" * 100_000
    response = api_client.post(REGISTER, body, content_type="application/json")
    assert response.status_code in (400, 413)


def test_json_nested_past_the_depth_limit_is_400(api_client):
    body = '{"email": ' + "[" * 40 + "1" + "]" * 40 + "}"
    response = api_client.post(REGISTER, body, content_type="application/json")
    assert response.status_code == 400


@pytest.mark.parametrize(
    "raw",
    [b"{", b"not json", b'{"a": NaN}', b"\xff\xfe\x00", b'{"email": "\\ud800"}', b""],
)
def test_malformed_bodies_are_400(api_client, raw):
    response = api_client.generic("POST", REGISTER, raw, content_type="application/json")
    assert response.status_code == 400
    assert not User.objects.exists()


def test_an_invalid_content_length_is_400(client):
    response = client.post(REGISTER, b"{}", content_type="application/json", CONTENT_LENGTH="abc")
    assert response.status_code == 400


def test_a_database_outage_outside_a_view_is_a_503_with_retry_after_not_a_500(rf):
    from django.db import OperationalError

    from softfactory.api import server_error

    request = rf.post("/api/auth/login")
    try:
        raise OperationalError("the database system is shutting down")
    except OperationalError:
        response = server_error(request)
    assert response.status_code == 503
    assert response["Retry-After"]
    try:
        raise ValueError("a real bug")
    except ValueError:
        assert server_error(request).status_code == 500
