"""Reads of coocook: chefs, bookings and reviews, scoped to what the caller may see.

The public reads (chef list, chef detail, a chef's reviews) are also served from the response
cache (`cached_*`, softfactory.cache, docs/CACHING.md): rendered bytes under keys versioned by
the `chefs` and `reviews` namespaces, which coocook/signals.py bumps on every write.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpResponse
from rest_framework.request import Request

from coocook.models import Booking, Chef, ChefCount, Review
from coocook.permissions import is_staff
from coocook.serializers import ChefSerializer, ReviewSerializer
from softfactory.api import NotFound, ShapedList, stored_count
from softfactory.cache import CachedRead, CanonicalPagination, Fill

# Response-cache namespaces: what a cached response shows, hence what a write invalidates.
CHEFS = "chefs"  # every chef field a response shows (list, detail; a chef's visibility)
REVIEWS = "reviews"  # chefs' reviews
CHEF_LIST = CachedRead(view="chefs.list", namespaces=(CHEFS,), paginated=True)
CHEF_DETAIL = CachedRead(view="chefs.detail", namespaces=(CHEFS,))
# An inactive chef's reviews are 404: the page depends on the chef as well as on its reviews.
CHEF_REVIEWS = CachedRead(view="chefs.reviews", namespaces=(REVIEWS, CHEFS), paginated=True)

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


def chef_count(
    *, cuisine: str | None = None, min_rating: Decimal | None = None, q: str | None = None
) -> QuerySet[ChefCount] | None:
    """The stored exact size of `chef_list` with these filters (a one-value query, read along with
    the page), or None when they aren't a stored key.

    ChefCount rows are kept by triggers in every writing transaction, so this is a SUM over a few
    dozen rows instead of a COUNT(*) over every active chef.
    """
    if min_rating is not None or q:
        return None
    counts = ChefCount.objects.filter(is_active=True)
    if cuisine:
        counts = counts.filter(cuisine_type=cuisine)
    return stored_count(counts)


def chef_page_queries(
    *, cuisine: str | None, min_rating: Decimal | None, q: str | None, ordering: str
) -> tuple[QuerySet[Chef], QuerySet[ChefCount] | None]:
    """The chef list and its stored count, as its page reads them."""
    return (
        chef_list(cuisine=cuisine, min_rating=min_rating, q=q, ordering=ordering),
        chef_count(cuisine=cuisine, min_rating=min_rating, q=q),
    )


# The chef list's page query, compiled once per shape (filters present, ordering): building and
# compiling it cost more CPU than the rest of an uncached page (docs/PERFORMANCE.md).
CHEF_PAGES = ShapedList(chef_page_queries, values=("cuisine", "min_rating", "q"))


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


# --- cached public reads ----------------------------------------------------------------


def _page(page: CanonicalPagination | None) -> CanonicalPagination:
    if page is None:  # only paginated CachedReads call these computations
        raise TypeError("a paginated read needs its pagination")
    return page


def cached_chef_list(
    *, request: Request, cuisine: str | None, min_rating: Decimal | None, q: str | None, ordering: str
) -> HttpResponse:
    """A page of the chef list from the response cache; it is the same for every caller."""
    params = {
        "cuisine": cuisine,
        "min_rating": min_rating,
        "q": q,
        "ordering": None if ordering == DEFAULT_CHEF_ORDERING else ordering,
    }

    def compute(page: CanonicalPagination | None) -> Fill:
        return Fill(
            _page(page).page_of_shaped(
                CHEF_PAGES, ChefSerializer, cuisine=cuisine, min_rating=min_rating, q=q, ordering=ordering
            )
        )

    return CHEF_LIST.respond(request, params=params, compute=compute)


def cached_chef(*, request: Request, chef_id: int) -> HttpResponse:
    """One chef from the response cache; only active chefs (the same for everyone) are stored."""

    def compute(page: CanonicalPagination | None) -> Fill:
        chef = chef_visible_to(user=request.user, chef_id=chef_id)
        # An inactive chef is seen by staff and its own user only: never under the shared key.
        return Fill(ChefSerializer(chef).data, public=chef.is_active)

    return CHEF_DETAIL.respond(request, params={"id": chef_id}, compute=compute)


def cached_chef_reviews(*, request: Request, chef_id: int) -> HttpResponse:
    """A page of a chef's reviews from the response cache; stored only for active chefs."""

    def compute(page: CanonicalPagination | None) -> Fill:
        chef = chef_visible_to(user=request.user, chef_id=chef_id)
        return Fill(_page(page).page_of(reviews_of_chef(chef=chef), ReviewSerializer), public=chef.is_active)

    return CHEF_REVIEWS.respond(request, params={"chef": chef_id}, compute=compute)
