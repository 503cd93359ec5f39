"""Cache invalidation for platform_core: cached tokens follow their user and their row."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from platform_core.authentication import forget_tokens
from platform_core.models import AuthToken, User


@receiver(post_save, sender=User)
def user_changed(sender: type[User], instance: User, using: str, **kwargs: Any) -> None:
    # is_staff, is_active or the name changed: cached token entries carry them.
    hashes = list(AuthToken.objects.using(using).filter(user_id=instance.pk).values_list("key_hash", flat=True))
    transaction.on_commit(lambda: forget_tokens(hashes), using=using)


@receiver(post_delete, sender=AuthToken)
def token_deleted(sender: type[AuthToken], instance: AuthToken, using: str, **kwargs: Any) -> None:
    key_hash = instance.key_hash
    transaction.on_commit(lambda: forget_tokens([key_hash]), using=using)
