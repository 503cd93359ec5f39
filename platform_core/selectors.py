"""Reads of platform_core: payments visible to a user."""

from __future__ import annotations

from django.db.models import QuerySet

from platform_core.models import Payment, User
from softfactory.api import NotFound


def payments_for(*, user: User) -> QuerySet[Payment]:
    """The user's own payments, newest first."""
    return Payment.objects.filter(user=user).order_by("-created_at", "id")


def payment_visible_to(*, user: User, payment_id: int) -> Payment:
    """A payment its owner or staff may see; anyone else gets 404."""
    payments = Payment.objects.all() if user.is_staff else Payment.objects.filter(user=user)
    payment = payments.filter(pk=payment_id).first()
    if payment is None:
        raise NotFound("No such payment.")
    return payment
