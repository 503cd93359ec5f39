"""The registry of things that can be paid for.

platform_core never imports a domain app, so a domain app tells payments what its payables
are at start-up (in its AppConfig.ready): `register("coocook.booking", loader)`. A loader
returns the payable's owner, amount and currency, and whether it can be paid right now.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Payable:
    kind: str
    id: int
    owner_id: int
    amount: Decimal
    currency: str
    # None when it can be paid now; otherwise why not (e.g. "the booking is cancelled").
    unpayable_reason: str | None = None


# loader(payable_id, lock) -> Payable, or None when no such payable exists.
# With lock=True the loader locks the row (select_for_update) inside the caller's transaction.
PayableLoader = Callable[[int, bool], Payable | None]

_loaders: dict[str, PayableLoader] = {}


def register(kind: str, loader: PayableLoader) -> None:
    _loaders[kind] = loader


def load(kind: str, payable_id: int, *, lock: bool = False) -> Payable | None:
    try:
        loader = _loaders[kind]
    except KeyError:
        raise LookupError(f"no payable kind {kind!r} is registered") from None
    return loader(payable_id, lock)


def registered_kinds() -> list[str]:
    return sorted(_loaders)
