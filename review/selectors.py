"""Reads of the review app: campaigns (public, drafts for staff) and a user's applications.

The public campaign list and detail are also served from the response cache (`cached_*`,
softfactory.cache, docs/CACHING.md) under keys versioned by the `campaigns` namespace, which
review/signals.py bumps on every write to a campaign (applicant_count included).
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpResponse
from rest_framework.request import Request

from platform_core.models import User
from review.models import Application, Campaign, CampaignCount
from review.serializers import CampaignSerializer
from softfactory.api import NotFound, ShapedList, stored_count
from softfactory.cache import CachedRead, CanonicalPagination, Fill

CAMPAIGNS = "campaigns"  # response-cache namespace: every campaign field a response shows
CAMPAIGN_LIST = CachedRead(view="campaigns.list", namespaces=(CAMPAIGNS,), paginated=True)
CAMPAIGN_DETAIL = CachedRead(view="campaigns.detail", namespaces=(CAMPAIGNS,))


def _is_staff(viewer: User | None) -> bool:
    return bool(viewer is not None and viewer.is_authenticated and viewer.is_staff)


def campaign_list(*, status: str, category: str | None = None, q: str | None = None) -> QuerySet[Campaign]:
    """Campaigns in one status, newest first (id breaks ties); served by (status, created_at DESC)."""
    campaigns = Campaign.objects.filter(status=status)
    if category is not None:
        campaigns = campaigns.filter(category=category)
    if q is not None:
        campaigns = campaigns.filter(title__icontains=q)
    return campaigns.order_by("-created_at", "id")


def campaign_count(*, status: str, category: str | None = None, q: str | None = None) -> QuerySet[CampaignCount] | None:
    """The stored exact size of `campaign_list` with these filters (a one-value query, read along
    with the page), or None when they aren't a stored key.

    CampaignCount rows are kept by triggers in every writing transaction: a SUM over a handful of
    rows instead of a COUNT(*) over every campaign in the status.
    """
    if q is not None:
        return None
    counts = CampaignCount.objects.filter(status=status)
    if category is not None:
        counts = counts.filter(category=category)
    return stored_count(counts)


def campaign_page_queries(
    *, status: str, category: str | None, q: str | None
) -> tuple[QuerySet[Campaign], QuerySet[CampaignCount] | None]:
    """The campaign list and its stored count, as its page reads them."""
    return campaign_list(status=status, category=category, q=q), campaign_count(status=status, category=category, q=q)


# The campaign list's page query, compiled once per shape (which filters are present).
CAMPAIGN_PAGES = ShapedList(campaign_page_queries, values=("status", "category", "q"))


def campaign_visible_to(*, viewer: User | None, campaign_id: int) -> Campaign:
    """A campaign the viewer may see: drafts only for staff, everyone else gets 404."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None or (campaign.status == Campaign.Status.DRAFT and not _is_staff(viewer)):
        raise NotFound("No such campaign.")
    return campaign


def applications_for(*, user: User) -> QuerySet[Application]:
    """The user's own applications, newest first (id breaks ties)."""
    return Application.objects.filter(user=user).order_by("-created_at", "id")


def application_visible_to(*, viewer: User, application_id: int) -> Application:
    """An application its applicant or staff may see; anyone else gets 404."""
    applications = Application.objects.all() if _is_staff(viewer) else Application.objects.filter(user=viewer)
    application = applications.filter(pk=application_id).first()
    if application is None:
        raise NotFound("No such application.")
    return application


# --- cached public reads ----------------------------------------------------------------


def cached_campaign_list(*, request: Request, status: str, category: str | None, q: str | None) -> HttpResponse:
    """A page of campaigns in one status from the response cache; drafts (staff only) bypass it."""

    def compute(page: CanonicalPagination | None) -> Fill:
        if page is None:  # CAMPAIGN_LIST is paginated
            raise TypeError("a paginated read needs its pagination")
        campaigns = page.page_of_shaped(CAMPAIGN_PAGES, CampaignSerializer, status=status, category=category, q=q)
        return Fill(campaigns, public=status != Campaign.Status.DRAFT)

    return CAMPAIGN_LIST.respond(
        request,
        params={"status": status, "category": category, "q": q},
        compute=compute,
        cacheable=status != Campaign.Status.DRAFT,
    )


def cached_campaign(*, request: Request, viewer: User | None, campaign_id: int) -> HttpResponse:
    """One campaign from the response cache; drafts (staff only) are never stored."""

    def compute(page: CanonicalPagination | None) -> Fill:
        campaign = campaign_visible_to(viewer=viewer, campaign_id=campaign_id)
        return Fill(CampaignSerializer(campaign).data, public=campaign.status != Campaign.Status.DRAFT)

    return CAMPAIGN_DETAIL.respond(request, params={"id": campaign_id}, compute=compute)
