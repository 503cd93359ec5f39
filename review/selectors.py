"""Reads of the review app: campaigns (public, drafts for staff) and a user's applications."""

from __future__ import annotations

from django.db.models import QuerySet

from platform_core.models import User
from review.models import Application, Campaign
from softfactory.api import NotFound


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
