import pytest
from django.contrib.auth import authenticate
from django.db import IntegrityError

from platform_core.models import User

pytestmark = pytest.mark.django_db


def test_emails_are_unique_whatever_their_case():
    User.objects.create_user("Chef@Example.com", "pw", name="A")
    with pytest.raises(IntegrityError):
        User.objects.create_user("chef@example.COM", "pw", name="B")


def test_login_matches_the_email_case_insensitively():
    user = User.objects.create_user("Mixed@Example.com", "s3cret-pass", name="M")
    assert authenticate(username="mixed@example.com", password="s3cret-pass") == user
