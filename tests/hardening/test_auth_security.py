"""Accounts under attack: password hashing and rules, throttles, token revocation, CSRF, the admin."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from platform_core.models import AuthToken, User
from sns.models import SNSPost
from tests.hardening.test_deploy_checks import PRODUCTION, ROOT
from tests.platform_core.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

REGISTER = "/api/auth/register"
LOGIN = "/api/auth/login"


def _login(client: APIClient, email: str, password: str = PASSWORD, **extra):
    return client.post(LOGIN, {"email": email, "password": password}, format="json", **extra)


# --- password storage ---------------------------------------------------------------------


def test_production_settings_hash_passwords_with_argon2id():
    """The test suite swaps in MD5 for speed; a process started like production must not."""
    env = {key: value for key, value in os.environ.items() if key != "PASSWORD_HASHERS"}
    env.update(PRODUCTION, DJANGO_SETTINGS_MODULE="softfactory.settings")
    code = (
        "import django; django.setup();"
        "from django.conf import settings; from django.contrib.auth.hashers import make_password, check_password;"
        "encoded = make_password('a-long-pass-phrase');"
        "print(settings.PASSWORD_HASHERS[0]); print(encoded.split('$')[0] + '$' + encoded.split('$')[1]);"
        "print(check_password('a-long-pass-phrase', encoded), check_password('wrong', encoded))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, text=True, capture_output=True)
    assert result.returncode == 0, result.stderr
    hasher, prefix, checks = result.stdout.split("\n")[:3]
    assert hasher == "django.contrib.auth.hashers.Argon2PasswordHasher"
    assert prefix == "argon2$argon2id"
    assert checks == "True False"


def test_the_api_never_returns_or_stores_a_password_in_clear(api_client):
    response = api_client.post(
        REGISTER, {"email": "clear@example.com", "password": "a-long-pass-phrase", "name": "C"}, format="json"
    )
    assert response.status_code == 201
    assert "password" not in response.json()
    assert "a-long-pass-phrase" not in User.objects.get(email="clear@example.com").password


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("short1", "too short"),
        ("password123", "too common"),
        ("8461937520", "entirely numeric"),
        ("victim@example.com", "too similar to the email"),
    ],
)
def test_register_applies_djangos_password_validators(api_client, password, why):
    response = api_client.post(
        REGISTER, {"email": "victim@example.com", "password": password, "name": "V"}, format="json"
    )
    assert response.status_code == 400, why
    assert "password" in response.json()
    assert not User.objects.filter(email="victim@example.com").exists()


# --- throttles ------------------------------------------------------------------------------


def test_ten_failed_logins_lock_the_email_for_the_window_even_with_the_right_password(api_client, user, settings):
    assert settings.LOGIN_FAILURE_LIMIT == 10
    assert settings.LOGIN_FAILURE_WINDOW_SECONDS == 300
    for attempt in range(10):
        assert _login(api_client, user.email, "wrong-password").status_code == 400, attempt
    for password in (PASSWORD, "wrong-password"):
        locked = _login(APIClient(), user.email.upper(), password)  # any client, any case of the email
        assert locked.status_code == 429
        assert 0 < int(locked["Retry-After"]) <= 300
    assert not AuthToken.objects.filter(user=user).exists()
    other = UserFactory()
    assert _login(api_client, other.email).status_code == 200  # other accounts are not locked out


def test_the_lockout_ends_with_its_window(api_client, user):
    for _ in range(10):
        _login(api_client, user.email, "wrong-password")
    assert _login(api_client, user.email).status_code == 429
    for key in cache.keys("throttle:login:*"):  # the window expiring, without waiting 5 minutes
        cache.delete(key)
    assert _login(api_client, user.email).status_code == 200


def test_sixty_registrations_a_minute_pass_and_then_the_address_is_throttled(api_client):
    def register(index: int, address: str):
        return api_client.post(
            REGISTER,
            {"email": f"burst{index}@example.com", "password": "a-long-pass-phrase", "name": "B"},
            format="json",
            REMOTE_ADDR=address,
        )

    codes = [register(i, "203.0.113.5").status_code for i in range(60)]
    assert codes == [201] * 60
    throttled = register(60, "203.0.113.5")
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) > 0
    assert register(61, "203.0.113.6").status_code == 201  # another client address is not throttled
    assert User.objects.filter(email__startswith="burst").count() == 61


# --- tokens -------------------------------------------------------------------------------


def test_logout_revokes_the_presented_token_at_once_and_only_that_one(api_client, user):
    first = _login(APIClient(), user.email).json()["token"]
    second = _login(APIClient(), user.email).json()["token"]
    one, two = APIClient(), APIClient()
    one.credentials(HTTP_AUTHORIZATION=f"Token {first}")
    two.credentials(HTTP_AUTHORIZATION=f"Token {second}")
    assert one.get("/api/auth/me").status_code == 200  # cached now: revocation must reach the cache too
    assert one.post("/api/auth/logout").status_code == 204
    for path in ("/api/auth/me", "/api/coocook/bookings", "/api/sns/posts", "/api/payment/payments"):
        revoked = one.get(path)
        assert revoked.status_code == 401, path
        assert revoked["WWW-Authenticate"] == "Token"
    assert one.post("/api/auth/logout").status_code == 401
    assert two.get("/api/auth/me").status_code == 200
    assert AuthToken.objects.filter(user=user).count() == 1


def test_a_revoked_or_made_up_token_is_401_even_on_public_endpoints(api_client, user):
    for header in ("Token not-a-real-token", "Token " + "0" * 40):
        api_client.credentials(HTTP_AUTHORIZATION=header)
        for path in ("/api/coocook/chefs", "/api/review/campaigns", "/api/auth/me"):
            response = api_client.get(path)
            assert response.status_code == 401, (header, path)
            assert response["WWW-Authenticate"] == "Token"


def test_tokens_are_stored_hashed(api_client, user):
    token = _login(api_client, user.email).json()["token"]
    stored = AuthToken.objects.get(user=user)
    assert token not in {stored.key_hash, *(str(v) for v in stored.__dict__.values())}


def test_a_deactivated_user_is_locked_out_of_existing_tokens(client_for, user, django_capture_on_commit_callbacks):
    client = client_for(user)
    assert client.get("/api/auth/me").status_code == 200  # the token is cached now
    with django_capture_on_commit_callbacks(execute=True):  # the cache entry goes when the change commits
        user.is_active = False
        user.save()
    assert client.get("/api/auth/me").status_code == 401


# --- CSRF ---------------------------------------------------------------------------------


def test_session_authenticated_unsafe_requests_need_the_csrf_token(user):
    browser = APIClient(enforce_csrf_checks=True)
    assert _login(browser, user.email).status_code == 200
    assert browser.get("/api/auth/me").status_code == 200  # safe methods need no token
    schedule = {"platform": "twitter", "content": "from a forged form"}
    forged = browser.post("/api/sns/schedule", schedule, format="json")
    assert forged.status_code == 403
    assert "CSRF" in forged.json()["detail"]
    assert browser.post("/api/sns/schedule", schedule, format="json", HTTP_X_CSRFTOKEN="wrong" * 8).status_code == 403
    assert not SNSPost.objects.filter(user=user).exists()
    csrf = browser.cookies["csrftoken"].value
    assert browser.post("/api/sns/schedule", schedule, format="json", HTTP_X_CSRFTOKEN=csrf).status_code == 202


def test_token_authenticated_requests_need_no_csrf_token(client_for, user):
    client = client_for(user)
    client.handler.enforce_csrf_checks = True
    response = client.post("/api/sns/schedule", {"platform": "twitter", "content": "api client"}, format="json")
    assert response.status_code == 202


def test_the_session_cookie_is_httponly_and_csrf_cookie_samesite(user):
    browser = APIClient()
    response = _login(browser, user.email)
    session = response.cookies["sessionid"]
    assert session["httponly"]
    assert session["samesite"].lower() == "lax"


# --- the admin ------------------------------------------------------------------------------


def test_the_admin_sends_anonymous_and_non_staff_users_to_its_login(client, user, staff_user):
    anonymous = client.get("/admin/")
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/admin/login/")
    client.force_login(user)
    non_staff = client.get("/admin/")
    assert non_staff.status_code == 302
    assert non_staff["Location"].startswith("/admin/login/")
    assert client.get("/admin/coocook/booking/").status_code == 302
    client.force_login(staff_user)
    assert client.get("/admin/").status_code == 200


def test_the_admin_login_refuses_a_non_staff_account(client, user):
    response = client.post("/admin/login/?next=/admin/", {"username": user.email, "password": PASSWORD})
    assert response.status_code == 200  # the form again, with an error; no redirect into the admin
    assert b"staff account" in response.content
    assert client.get("/admin/").status_code == 302
