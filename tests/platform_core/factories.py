"""Factories for accounts and tokens, shared by every app's tests."""

from __future__ import annotations

import factory
from factory.django import DjangoModelFactory

from platform_core.models import AuthToken, User, hash_token_key

PASSWORD = "correct-horse-battery-staple"


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @classmethod
    def _after_postgeneration(cls, instance: User, create: bool, results: dict | None = None) -> None:
        if create:
            instance.save(update_fields=["password"])


class StaffFactory(UserFactory):
    is_staff = True


def token_for(user: User) -> str:
    """A fresh API token for the user (as a login would create), returned raw."""
    key = AuthToken.new_key()
    AuthToken.objects.create(user=user, key_hash=hash_token_key(key))
    return key
