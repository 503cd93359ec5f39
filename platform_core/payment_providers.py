"""Payment providers. Payments settle synchronously; PAYMENT_PROVIDER picks the class."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


class PaymentDeclined(Exception):
    """The provider refused the charge; the payment is recorded as failed."""


@dataclass(frozen=True)
class Charge:
    reference: str


class PaymentProvider(Protocol):
    name: str

    def charge(self, *, amount: Decimal, currency: str, method: str, description: str) -> Charge: ...

    def refund(self, *, reference: str, amount: Decimal, currency: str) -> None: ...


class TestProvider:
    """Built-in provider that settles at once. PAYMENT_TEST_PROVIDER_DELAY_SECONDS slows each
    charge down, so tests can hold a request open (idempotency "still running" cases)."""

    name = "test"

    def charge(self, *, amount: Decimal, currency: str, method: str, description: str) -> Charge:
        delay = float(getattr(settings, "PAYMENT_TEST_PROVIDER_DELAY_SECONDS", 0))
        if delay:
            time.sleep(delay)
        return Charge(reference=f"test_{uuid.uuid4().hex}")

    def refund(self, *, reference: str, amount: Decimal, currency: str) -> None:
        return None


@cache
def _provider_class(path: str) -> type[PaymentProvider]:
    return import_string(path)


def get_provider() -> PaymentProvider:
    return _provider_class(settings.PAYMENT_PROVIDER)()
