"""Reads of coocook: chefs, bookings and reviews, scoped to what the caller may see."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet

from coocook.models import Booking, Chef, Review
from coocook.permissions import is_staff
from softfactory.api import NotFound

# `ordering` values of the chef list; every ordering ends with `id` ascending (API.md).
CHEF_ORDERINGS: dict[str, tuple[str, ...]] = {
    "-rating": ("-rating", "id"),
    "rating": ("rating", "id"),
    "-hourly_rate": ("-hourly_rate", "id"),
    "hourly_rate": ("hourly_rate", "id"),
    "-created_at": ("-created_at", "id"),
}
DEFAULT_CHEF_ORDERING = "-rating"


def chef_list(
    *,
    cuisine: str | None = None,
    min_rating: Decimal | None = None,
    q: str | None = None,
    ordering: str = DEFAULT_CHEF_ORDERING,
) -> QuerySet[Chef]:
    """Active chefs (for everyone, staff too), filtered and ordered as API.md says."""
    chefs = Chef.objects.filter(is_active=True)
    if cuisine:
        chefs = chefs.filter(cuisine_type=cuisine)
    if min_rating is not None:
        chefs = chefs.filter(rating__gte=min_rating)
    if q:
        chefs = chefs.filter(name__icontains=q)
    return chefs.order_by(*CHEF_ORDERINGS[ordering])


def chefs_visible_to(*, user: Any) -> QuerySet[Chef]:
    """Chefs the caller may see: active ones, plus inactive ones to staff and their own user."""
    if is_staff(user):
        return Chef.objects.all()
    if getattr(user, "is_authenticated", False):
        return Chef.objects.filter(Q(is_active=True) | Q(owner_id=user.pk))
    return Chef.objects.filter(is_active=True)


def chef_visible_to(*, user: Any, chef_id: int) -> Chef:
    """One chef the caller may see; anything else is 404."""
    chef = chefs_visible_to(user=user).filter(pk=chef_id).first()
    if chef is None:
        raise NotFound("No such chef.")
    return chef


def bookings_for(*, user: Any) -> QuerySet[Booking]:
    """The user's own bookings, `booking_date` newest first."""
    return Booking.objects.filter(user_id=user.pk).order_by("-booking_date", "id")


def booking_visible_to(*, user: Any, booking_id: int) -> Booking:
    """A booking its owner or staff may see; anyone else gets 404."""
    bookings = Booking.objects.all() if is_staff(user) else Booking.objects.filter(user_id=user.pk)
    booking = bookings.filter(pk=booking_id).first()
    if booking is None:
        raise NotFound("No such booking.")
    return booking


def reviews_of_chef(*, chef: Chef) -> QuerySet[Review]:
    """A chef's reviews, newest first."""
    return Review.objects.filter(chef_id=chef.pk).order_by("-created_at", "id")


def reviews_of_booking(*, booking: Booking) -> QuerySet[Review]:
    """A booking's reviews (at most one), newest first."""
    return Review.objects.filter(booking_id=booking.pk).order_by("-created_at", "id")
