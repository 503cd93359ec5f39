"""Writes and rules of coocook: chefs, bookings (no overlaps, refunds on cancel) and reviews."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.db.models import DecimalField, F
from django.db.models.functions import Cast, Round
from django.utils import timezone

from coocook.models import Booking, Chef, Review
from coocook.permissions import can_edit_chef, can_see_booking, is_staff
from platform_core import notifications
from platform_core import services as platform_services
from platform_core.models import User
from platform_core.payables import Payable
from softfactory.api import Conflict, Forbidden, Invalid, NotFound

BOOKING_PAYABLE = "coocook.booking"
OVERLAP_CONSTRAINT = "booking_no_overlap_per_chef"
UNIQUE_VIOLATION = "23505"
DEADLOCK_DETECTED = "40P01"
OVERLAP_DEADLOCK_ATTEMPTS = 3
CHEF_STAFF_ONLY_FIELDS = frozenset({"is_active", "owner_id"})
CHEF_WRITABLE_FIELDS = frozenset({"name", "cuisine_type", "bio", "hourly_rate", "currency"}) | CHEF_STAFF_ONLY_FIELDS


def _ratio() -> DecimalField:
    return DecimalField(max_digits=20, decimal_places=6)


def _pg_error(exc: Exception) -> tuple[str | None, str | None]:
    """(SQLSTATE, constraint name) of the PostgreSQL error behind a Django database error."""
    cause = exc.__cause__
    diag = getattr(cause, "diag", None)
    return getattr(cause, "pgcode", None), getattr(diag, "constraint_name", None)


# --- chefs ------------------------------------------------------------------------------


def _owner_id(owner_id: int | None) -> int | None:
    if owner_id is not None and not User.objects.filter(pk=owner_id).exists():
        raise Invalid("No such user.", field="owner_id")
    return owner_id


@transaction.atomic
def chef_create(
    *,
    name: str,
    cuisine_type: str,
    hourly_rate: Decimal,
    currency: str,
    bio: str = "",
    is_active: bool = True,
    owner_id: int | None = None,
) -> Chef:
    """Add a chef (staff)."""
    return Chef.objects.create(
        name=name,
        cuisine_type=cuisine_type,
        bio=bio,
        hourly_rate=hourly_rate,
        currency=currency,
        is_active=is_active,
        owner_id=_owner_id(owner_id),
    )


@transaction.atomic
def chef_update(*, chef: Chef, by: Any, changes: dict[str, Any]) -> Chef:
    """Change a chef's profile (staff or its own user); `is_active` and `owner_id` by staff only."""
    if not can_edit_chef(by, chef):
        raise Forbidden("Only staff and the chef's own user can change this chef.")
    if CHEF_STAFF_ONLY_FIELDS & changes.keys() and not is_staff(by):
        raise Forbidden("Only staff can change is_active and owner_id.")
    unknown = changes.keys() - CHEF_WRITABLE_FIELDS
    if unknown:
        raise Invalid(f"Not writable: {', '.join(sorted(unknown))}.")
    # Locked and saved field by field: a concurrent review's rating update must not be overwritten.
    locked = Chef.objects.select_for_update().get(pk=chef.pk)
    if "owner_id" in changes:
        _owner_id(changes["owner_id"])
    for field, value in changes.items():
        setattr(locked, field, value)
    if changes:
        locked.save(update_fields=sorted(changes))
    return locked


@transaction.atomic
def chefs_set_active(*, chef_ids: Iterable[int], is_active: bool) -> int:
    """Activate or deactivate chefs (admin); returns how many changed."""
    return Chef.objects.filter(pk__in=list(chef_ids)).exclude(is_active=is_active).update(is_active=is_active)


# --- bookings ---------------------------------------------------------------------------


def booking_period(
    *, booking_date: dt.date, start_time: dt.time, duration_hours: int
) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a booking: wall-clock date and time in BOOKING_TIME_ZONE, `duration_hours` long."""
    zone = ZoneInfo(str(settings.BOOKING_TIME_ZONE))
    start = dt.datetime.combine(booking_date, start_time.replace(tzinfo=None), tzinfo=zone).astimezone(dt.UTC)
    return start, start + dt.timedelta(hours=duration_hours)


@transaction.atomic
def booking_create(
    *,
    user: User,
    chef_id: int,
    booking_date: dt.date,
    start_time: dt.time,
    duration_hours: int,
    guests: int,
    notes: str = "",
    now: dt.datetime | None = None,
) -> Booking:
    """Book an active chef for a future slot; the exclusion constraint refuses overlaps (409)."""
    chef = Chef.objects.filter(pk=chef_id, is_active=True).first()
    if chef is None:
        raise Invalid("No such active chef.", field="chef_id")
    try:
        start, end = booking_period(booking_date=booking_date, start_time=start_time, duration_hours=duration_hours)
    except OverflowError:
        raise Invalid("This date is out of range.", field="booking_date") from None
    if start <= (now or timezone.now()):
        raise Invalid("The booking must start in the future.")
    booking = Booking(
        user=user,
        chef=chef,
        booking_date=booking_date,
        start_time=start_time,
        duration_hours=duration_hours,
        guests=guests,
        notes=notes,
        status=Booking.Status.CONFIRMED,
        total_price=chef.hourly_rate * duration_hours,
        currency=chef.currency,
        period=DateTimeTZRange(start, end, "[)"),
    )
    _insert_booking(booking)
    notifications.notify(
        user_id=user.pk,
        kind="coocook.booking_confirmed",
        subject=f"Your booking with {chef.name} is confirmed",
        body=f"Booking {booking.pk}: {booking_date:%Y-%m-%d} at {start_time:%H:%M} for {duration_hours} h, "
        f"{guests} guest(s); total {booking.total_price} {booking.currency}.",
    )
    return booking


def _insert_booking(booking: Booking) -> None:
    """Insert in a savepoint (the caller's transaction stays usable); an overlap is a 409.

    Two transactions inserting overlapping bookings at the same moment can each find the other's
    uncommitted row while checking the exclusion constraint and wait for each other: PostgreSQL
    then aborts one with a deadlock error. The loser's row is gone with its savepoint, so it
    tries again and now simply waits for the winner: a conflict if the winner commits, a booking
    if it rolls back.
    """
    overlap = Conflict("The chef already has a booking overlapping that time.", code="booking_overlap")
    for attempt in range(1, OVERLAP_DEADLOCK_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                booking.save(force_insert=True)
        except IntegrityError as exc:
            if _pg_error(exc)[1] == OVERLAP_CONSTRAINT:
                raise overlap from None
            raise
        except OperationalError as exc:
            if _pg_error(exc)[0] != DEADLOCK_DETECTED:
                raise
            if attempt == OVERLAP_DEADLOCK_ATTEMPTS:
                raise overlap from None  # still racing overlapping bookings: one of them wins
        else:
            return


@transaction.atomic
def booking_cancel(*, booking_id: int, by: Any, now: dt.datetime | None = None) -> Booking:
    """Cancel a booking (its user or staff), freeing the slot and refunding a paid booking."""
    booking = Booking.objects.select_for_update().filter(pk=booking_id).first()
    if booking is None or not can_see_booking(by, booking):
        raise NotFound("No such booking.")
    if booking.status == Booking.Status.CANCELLED:
        raise Conflict("This booking is already cancelled.", code="booking_cancelled")
    if booking.status == Booking.Status.COMPLETED or booking.period.upper <= (now or timezone.now()):
        raise Conflict("This booking is completed and can't be cancelled.", code="booking_completed")
    booking.status = Booking.Status.CANCELLED
    booking.save(update_fields=["status"])
    platform_services.payment_refund_for_payable(kind=BOOKING_PAYABLE, payable_id=booking.pk)
    notifications.notify(
        user_id=booking.user_id,
        kind="coocook.booking_cancelled",
        subject="Your booking is cancelled",
        body=f"Booking {booking.pk} on {booking.booking_date:%Y-%m-%d} at {booking.start_time:%H:%M} is cancelled.",
    )
    return booking


@transaction.atomic
def bookings_complete_finished(*, now: dt.datetime) -> int:
    """Mark confirmed bookings whose end has passed as completed (one UPDATE); returns how many."""
    return Booking.objects.filter(status=Booking.Status.CONFIRMED, period__endswith__lte=now).update(
        status=Booking.Status.COMPLETED
    )


def booking_payable(payable_id: int, lock: bool) -> Payable | None:
    """The payable behind a booking id (platform_core.payables loader); lock=True locks the row."""
    bookings = Booking.objects.select_for_update() if lock else Booking.objects.all()
    booking = bookings.filter(pk=payable_id).first()
    if booking is None:
        return None
    return Payable(
        kind=BOOKING_PAYABLE,
        id=booking.pk,
        owner_id=booking.user_id,
        amount=booking.total_price,
        currency=booking.currency,
        unpayable_reason="the booking is cancelled" if booking.status == Booking.Status.CANCELLED else None,
    )


# --- reviews ----------------------------------------------------------------------------


@transaction.atomic
def review_create(
    *, user: User, booking_id: int, rating: int, comment: str = "", now: dt.datetime | None = None
) -> Review:
    """Review one's own finished booking once; the chef's rating moves in the same transaction."""
    booking = Booking.objects.select_for_update().filter(pk=booking_id, user_id=user.pk).first()
    if booking is None:
        raise NotFound("No such booking.")
    if booking.status == Booking.Status.CANCELLED:
        raise Invalid("A cancelled booking can't be reviewed.", field="booking_id")
    if booking.period.upper > (now or timezone.now()):
        raise Invalid("The booking has not ended yet.", field="booking_id")
    review = Review(booking=booking, chef_id=booking.chef_id, user=user, rating=rating, comment=comment)
    try:
        with transaction.atomic():
            review.save(force_insert=True)
    except IntegrityError as exc:
        if _pg_error(exc)[0] == UNIQUE_VIOLATION:
            raise Conflict("This booking already has a review.", code="review_exists") from None
        raise
    # One UPDATE computed from the row's current values, so concurrent reviews lose nothing.
    new_total = F("rating_total") + rating
    new_count = F("review_count") + 1
    Chef.objects.filter(pk=booking.chef_id).update(
        rating_total=new_total,
        review_count=new_count,
        rating=Round(Cast(new_total, _ratio()) / Cast(new_count, _ratio()), 2),
    )
    return review
