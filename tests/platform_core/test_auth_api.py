"""Accounts and tokens over HTTP (API.md platform_core)."""

from __future__ import annotations

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from platform_core.models import AuthToken, User
from tests.platform_core.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def login(client: APIClient, email: str, password: str = PASSWORD):
    return client.post("/api/auth/login", {"email": email, "password": password}, format="json")


def test_register_creates_a_user_and_answers_201(api_client):
    response = api_client.post(
        "/api/auth/register",
        {"email": "new@example.com", "password": "a-long-pass-phrase", "name": "New"},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "name"}
    assert User.objects.get(pk=body["id"]).check_password("a-long-pass-phrase")


def test_register_refuses_a_duplicate_email_in_any_case(api_client, user):
    response = api_client.post(
        "/api/auth/register",
        {"email": user.email.upper(), "password": "a-long-pass-phrase", "name": "X"},
        format="json",
    )
    assert response.status_code == 400
    assert "email" in response.json()
    assert User.objects.count() == 1


@pytest.mark.parametrize("password", ["short", "12345678901", "password123"])
def test_register_refuses_a_weak_password(api_client, password):
    response = api_client.post(
        "/api/auth/register", {"email": "w@example.com", "password": password, "name": "W"}, format="json"
    )
    assert response.status_code == 400
    assert "password" in response.json()
    assert not User.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": "not-an-email", "password": "a-long-pass-phrase", "name": "N"},
        {"email": "n@example.com", "password": "a-long-pass-phrase", "name": ""},
        {"email": "n@example.com", "password": "a-long-pass-phrase", "name": "x" * 151},
        {"email": ["n@example.com"], "password": 5, "name": {"a": 1}},
    ],
)
def test_register_answers_400_for_bad_input_and_creates_nothing(api_client, body):
    assert api_client.post("/api/auth/register", body, format="json").status_code == 400
    assert not User.objects.exists()


def test_login_returns_a_new_token_per_login_and_the_user(api_client, user):
    first = login(api_client, user.email.upper())
    second = login(APIClient(), user.email)
    assert first.status_code == second.status_code == 200
    assert first.json()["user"] == {"id": user.pk, "email": user.email, "name": user.name}
    assert first.json()["token"] != second.json()["token"]
    assert AuthToken.objects.filter(user=user).count() == 2


def test_login_with_bad_credentials_is_400(api_client, user):
    assert login(api_client, user.email, "wrong").status_code == 400
    assert login(api_client, "nobody@example.com").status_code == 400


def test_a_token_authenticates_and_me_shows_the_user(client_for, user):
    response = client_for(user).get("/api/auth/me")
    assert response.status_code == 200
    assert response.json() == {"id": user.pk, "email": user.email, "name": user.name, "is_staff": False}


def test_anonymous_requests_get_401_with_www_authenticate_token(api_client):
    response = api_client.get("/api/auth/me")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_an_invalid_token_is_401_everywhere(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token nonsense")
    for path in ("/api/auth/me", "/api/payment/payments"):
        response = api_client.get(path)
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Token"


def test_logout_revokes_only_the_presented_token(api_client, user):
    first = login(api_client, user.email).json()["token"]
    second = login(APIClient(), user.email).json()["token"]
    one, two = APIClient(), APIClient()
    one.credentials(HTTP_AUTHORIZATION=f"Token {first}")
    two.credentials(HTTP_AUTHORIZATION=f"Token {second}")
    assert one.post("/api/auth/logout").status_code == 204
    assert one.get("/api/auth/me").status_code == 401
    assert two.get("/api/auth/me").status_code == 200


def test_login_sets_a_session_that_authenticates_browser_requests_with_csrf(user):
    client = APIClient(enforce_csrf_checks=True)
    assert login(client, user.email).status_code == 200
    assert client.get("/api/auth/me").status_code == 200
    # Unsafe methods with the session need the CSRF token.
    assert client.post("/api/auth/logout").status_code == 403
    csrf = client.cookies["csrftoken"].value
    assert client.post("/api/auth/logout", HTTP_X_CSRFTOKEN=csrf).status_code == 204
    assert client.get("/api/auth/me").status_code == 401


def test_a_request_without_a_session_cookie_looks_up_no_session_user(api_client, monkeypatch):
    from django.contrib import auth

    lookups = []
    real_get_user = auth.get_user
    monkeypatch.setattr(auth, "get_user", lambda request: lookups.append(1) or real_get_user(request))
    assert api_client.get("/api/auth/me").status_code == 401
    assert api_client.get("/api/coocook/chefs").status_code == 200
    assert lookups == []
    # A cookie naming no session is looked up, and is anonymous.
    api_client.cookies["sessionid"] = "no-such-session"
    assert api_client.get("/api/auth/me").status_code == 401
    assert lookups


def test_a_session_cookie_still_authenticates_after_the_short_path(user):
    client = APIClient()
    assert login(client, user.email).status_code == 200
    assert "sessionid" in client.cookies
    assert client.get("/api/auth/me").json()["email"] == user.email


@override_settings(LOGIN_FAILURE_LIMIT=3)
def test_failed_logins_lock_the_email_out_with_429_and_retry_after(api_client, user):
    for _ in range(3):
        assert login(api_client, user.email, "wrong").status_code == 400
    locked = login(api_client, user.email)  # even the right password
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) > 0
    assert login(api_client, UserFactory().email).status_code == 200  # other emails unaffected


def test_registrations_are_throttled_per_client_address(api_client, settings):
    from platform_core.permissions import RegistrationThrottle

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"register": "3/min"}}
    RegistrationThrottle.THROTTLE_RATES = {"register": "3/min"}
    try:
        codes = [
            api_client.post(
                "/api/auth/register",
                {"email": f"r{i}@example.com", "password": "a-long-pass-phrase", "name": "R"},
                format="json",
                REMOTE_ADDR="198.51.100.7",
            ).status_code
            for i in range(4)
        ]
    finally:
        from rest_framework.settings import api_settings

        RegistrationThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    assert codes == [201, 201, 201, 429]


def test_paths_with_a_trailing_slash_are_404(client_for, user):
    assert client_for(user).get("/api/auth/me/").status_code == 404


def test_a_token_authenticated_read_is_not_counted_as_a_write(client_for, user):
    from softfactory.db_router import current_state, routing_scope

    client = client_for(user)
    client.get("/api/auth/me")  # warms the token cache
    from platform_core.authentication import TokenAuthentication

    with routing_scope():
        key = client._credentials["HTTP_AUTHORIZATION"].split()[1]
        TokenAuthentication().authenticate_credentials(key)
        assert current_state().wrote is False


def test_unknown_api_paths_answer_json_404(api_client):
    response = api_client.get("/api/auth/me/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}
