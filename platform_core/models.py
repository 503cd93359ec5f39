"""Accounts, API tokens, idempotency records and payments."""

from __future__ import annotations

import hashlib
import secrets
from decimal import Decimal
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_by_natural_key(self, username: str | None) -> User:
        # Emails are unique and matched case-insensitively (API.md).
        return self.get(email__iexact=username)

    def create_user(self, email: str, password: str | None = None, **fields: Any) -> User:
        if not email:
            raise ValueError("users need an email address")
        user = self.model(email=self.normalize_email(email), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields: Any) -> User:
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person using SoftFactory; identified by email."""

    email = models.EmailField(max_length=254, unique=True)
    name = models.CharField(max_length=150)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = ["name"]

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(Lower("email"), name="platform_core_user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email


def hash_token_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class AuthToken(models.Model):
    """One API token per login; only its SHA-256 is stored, so a database leak leaks no token."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="auth_tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes: ClassVar = [models.Index(fields=["user", "created_at"], name="authtoken_user_created_idx")]

    def __str__(self) -> str:
        return f"token {self.key_hash[:8]}… of user {self.user_id}"

    @staticmethod
    def new_key() -> str:
        return secrets.token_hex(20)


class IdempotencyRecord(models.Model):
    """The first 2xx answer to a request carrying an Idempotency-Key (API.md), kept ≥ 24 h.

    Written in the same transaction as the write it protects, so the write and its record
    commit or roll back together.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=255)
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    # Headers a replay must repeat (REPLAYED_HEADERS, e.g. Location). Nullable, no default: rows
    # written by code older than this column stay valid, and adding it is metadata-only.
    response_headers = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["user", "method", "path", "key"], name="idempotency_scope_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} key={self.key}"


class Payment(models.Model):
    """Money paid for a payable (e.g. a booking), found through the payable registry."""

    class Method(models.TextChoices):
        CARD = "card"
        BANK_TRANSFER = "bank_transfer"

    class Status(models.TextChoices):
        PAID = "paid"
        REFUNDED = "refunded"
        FAILED = "failed"

    payable_kind = models.CharField(max_length=50)
    payable_id = models.BigIntegerField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payments")
    amount = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0"))])
    currency = models.CharField(max_length=3)
    method = models.CharField(max_length=20, choices=Method.choices)
    status = models.CharField(max_length=10, choices=Status.choices)
    provider = models.CharField(max_length=30, default="test")
    provider_reference = models.CharField(max_length=100, blank=True)
    failure_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints: ClassVar = [
            # One live (paid) payment per payable; refunded and failed ones stay as history.
            models.UniqueConstraint(
                fields=["payable_kind", "payable_id"],
                condition=Q(status="paid"),
                name="payment_one_live_per_payable",
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="payment_amount_not_negative"),
            models.CheckConstraint(condition=Q(status__in=["paid", "refunded", "failed"]), name="payment_status_valid"),
            models.CheckConstraint(condition=Q(method__in=["card", "bank_transfer"]), name="payment_method_valid"),
        ]
        indexes: ClassVar = [
            models.Index(fields=["user", "-created_at", "-id"], name="payment_user_created_idx"),
            models.Index(fields=["payable_kind", "payable_id"], name="payment_payable_idx"),
        ]

    def __str__(self) -> str:
        return f"payment {self.pk} {self.amount} {self.currency} ({self.status})"


class Notification(models.Model):
    """An email to send, written in the same transaction as the change it reports (the outbox).

    A worker sends it after commit; a periodic sweep sends whatever a lost message left behind.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=50)
    subject = models.CharField(max_length=255)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "sent", "failed"]), name="notification_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False), name="notification_sent_has_time"
            ),
        ]
        indexes: ClassVar = [
            # Serves the sweep; only undelivered rows are in it.
            models.Index(
                fields=["next_attempt_at", "id"], name="notification_pending_idx", condition=Q(status="pending")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to user {self.user_id} ({self.status})"
