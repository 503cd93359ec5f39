"""Accounts, tokens and payments: the write side of platform_core."""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from platform_core import payables
from platform_core.authentication import cache_token, forget_tokens
from platform_core.models import AuthToken, Payment, User, hash_token_key
from platform_core.payment_providers import PaymentDeclined, get_provider
from softfactory.api import Conflict, Invalid, NotFound

logger = logging.getLogger(__name__)


class LoginThrottled(Exception):
    """Too many failed logins for one email; retry after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after}s")
        self.retry_after = retry_after


# --- accounts ---------------------------------------------------------------------------


@transaction.atomic
def user_register(*, email: str, password: str, name: str) -> User:
    """Create an account; emails are unique whatever their case."""
    if User.objects.filter(email__iexact=email).exists():
        raise Invalid("A user with this email already exists.", field="email")
    candidate = User(email=User.objects.normalize_email(email), name=name)
    try:
        password_validation.validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        raise Invalid(" ".join(exc.messages), field="password") from None
    candidate.set_password(password)
    try:
        with transaction.atomic():
            candidate.save()
    except IntegrityError:  # a concurrent registration won the race
        raise Invalid("A user with this email already exists.", field="email") from None
    return candidate


def _failure_key(email: str) -> str:
    return "throttle:login:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


def login_failures_check(*, email: str) -> None:
    """Raise LoginThrottled while an email is locked out by failed logins (API.md)."""
    key = _failure_key(email)
    failures = cache.get(key)
    if failures is not None and int(failures) >= settings.LOGIN_FAILURE_LIMIT:
        ttl = cache.ttl(key) if hasattr(cache, "ttl") else None
        raise LoginThrottled(max(int(ttl or settings.LOGIN_FAILURE_WINDOW_SECONDS), 1))


def login_failure_record(*, email: str) -> None:
    """Count a failed login; the window starts at the first failure."""
    key = _failure_key(email)
    cache.add(key, 0, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS)


def token_create(*, user: User) -> str:
    """A new API token for one login; returns the raw key (only its hash is stored)."""
    key = AuthToken.new_key()
    token = AuthToken.objects.create(user=user, key_hash=hash_token_key(key))
    User.objects.filter(pk=user.pk).update(last_login=timezone.now())
    cache_token(token)
    return key


def token_revoke(*, token: AuthToken) -> None:
    """Revoke exactly this token; the user's other logins keep working."""
    AuthToken.objects.filter(pk=token.pk).delete()
    forget_tokens([token.key_hash])  # now, not only after commit: the next request must fail


# --- payments ---------------------------------------------------------------------------


@transaction.atomic
def payment_create(*, user: User, payable_kind: str, payable_id: int, method: str) -> Payment:
    """Charge the payable's amount through the provider, at once; one paid payment per payable."""
    payable = payables.load(payable_kind, payable_id, lock=True)
    if payable is None or payable.owner_id != user.pk:
        raise NotFound("No such booking.", code="not_found")
    if payable.unpayable_reason:
        raise Conflict(f"This cannot be paid: {payable.unpayable_reason}.", code="not_payable")
    if Payment.objects.filter(payable_kind=payable_kind, payable_id=payable_id, status=Payment.Status.PAID).exists():
        raise Conflict("This is already paid.", code="already_paid")
    provider = get_provider()
    payment = Payment(
        payable_kind=payable_kind,
        payable_id=payable_id,
        user=user,
        amount=payable.amount,
        currency=payable.currency,
        method=method,
        provider=provider.name,
    )
    try:
        charge = provider.charge(
            amount=payable.amount, currency=payable.currency, method=method, description=f"{payable_kind}:{payable_id}"
        )
    except PaymentDeclined as exc:
        payment.status = Payment.Status.FAILED
        payment.failure_reason = str(exc)[:255]
        payment.save()
        return payment
    payment.status = Payment.Status.PAID
    payment.provider_reference = charge.reference
    try:
        with transaction.atomic():
            payment.save()
    except IntegrityError:  # the partial unique index: someone else paid it meanwhile
        raise Conflict("This is already paid.", code="already_paid") from None
    return payment


def _refund(payment: Payment) -> Payment:
    get_provider().refund(reference=payment.provider_reference, amount=payment.amount, currency=payment.currency)
    payment.status = Payment.Status.REFUNDED
    payment.refunded_at = timezone.now()
    payment.save(update_fields=["status", "refunded_at"])
    return payment


@transaction.atomic
def payment_refund(*, payment_id: int) -> Payment:
    """Refund a paid payment (staff); anything else is a conflict."""
    payment = Payment.objects.select_for_update().filter(pk=payment_id).first()
    if payment is None:
        raise NotFound("No such payment.")
    if payment.status != Payment.Status.PAID:
        raise Conflict(f"Only paid payments can be refunded; this one is {payment.status}.", code="not_refundable")
    return _refund(payment)


@transaction.atomic
def payment_refund_for_payable(*, kind: str, payable_id: int) -> Payment | None:
    """Refund the payable's paid payment if it has one (e.g. when a booking is cancelled)."""
    payment = (
        Payment.objects.select_for_update()
        .filter(payable_kind=kind, payable_id=payable_id, status=Payment.Status.PAID)
        .first()
    )
    return _refund(payment) if payment is not None else None
