"""Writes of the review app: campaigns, applications and their decisions.

`Campaign.applicant_count` (pending plus approved applications) is kept in the same
transaction as every application write, and PostgreSQL's CHECK (applicant_count <=
max_reviewers) is the last word on capacity: a conditional UPDATE takes a seat, so
concurrent applicants queue on the campaign row and never overfill it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from platform_core import notifications
from platform_core.models import User
from review.models import Application, Campaign
from softfactory.api import Conflict, DomainError, Invalid, NotFound

CAMPAIGN_WRITABLE_FIELDS = frozenset(
    {"title", "brand", "category", "description", "reward", "currency", "max_reviewers", "deadline", "status"}
)
# A CHECK constraint that fails -> the request field it guards.
_CONSTRAINT_FIELDS = {
    "campaign_never_over_capacity": "max_reviewers",
    "campaign_max_reviewers_positive": "max_reviewers",
    "campaign_reward_not_negative": "reward",
    "campaign_status_valid": "status",
}


def _constraint_name(exc: IntegrityError) -> str | None:
    return getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)


def _check_deadline(deadline: datetime, *, now: datetime) -> None:
    if deadline <= now:
        raise Invalid("The deadline must be in the future.", field="deadline")


def campaign_check(*, campaign: Campaign | None, changes: Mapping[str, Any], now: datetime) -> None:
    """Refuse (Invalid) changes to a campaign, or a new one (campaign=None), that break its rules."""
    if "deadline" in changes and (campaign is None or changes["deadline"] != campaign.deadline):
        _check_deadline(changes["deadline"], now=now)
    if campaign is None:
        return
    new_status = changes.get("status", campaign.status)
    new_deadline = changes.get("deadline", campaign.deadline)
    if new_status == Campaign.Status.ACTIVE and campaign.status != Campaign.Status.ACTIVE and new_deadline <= now:
        raise Invalid("The deadline has passed; move it into the future to activate the campaign.", field="deadline")
    if changes.get("max_reviewers", campaign.max_reviewers) < campaign.applicant_count:
        raise Invalid(
            f"max_reviewers can't be lower than the current applicant count ({campaign.applicant_count}).",
            field="max_reviewers",
        )


def _save_campaign(campaign: Campaign, *, update_fields: list[str] | None = None) -> None:
    try:
        with transaction.atomic():  # a savepoint: the caller's transaction stays usable
            campaign.save(update_fields=update_fields)
    except IntegrityError as exc:
        field = _CONSTRAINT_FIELDS.get(_constraint_name(exc) or "")
        if field is None:
            raise
        if field == "max_reviewers":
            raise Invalid("max_reviewers can't be lower than the current applicant count.", field=field) from exc
        raise Invalid("This value breaks a rule of campaigns.", field=field) from exc


@transaction.atomic
def campaign_create(
    *,
    title: str,
    brand: str,
    category: str,
    reward: Decimal,
    max_reviewers: int,
    deadline: datetime,
    description: str = "",
    currency: str = "KRW",
    status: str = Campaign.Status.DRAFT,
) -> Campaign:
    """Create a campaign (a draft unless told otherwise); its deadline must lie ahead."""
    campaign_check(campaign=None, changes={"deadline": deadline}, now=timezone.now())
    campaign = Campaign(
        title=title,
        brand=brand,
        category=category,
        description=description,
        reward=reward,
        currency=currency,
        max_reviewers=max_reviewers,
        deadline=deadline,
        status=status,
    )
    _save_campaign(campaign)
    return campaign


@transaction.atomic
def campaign_update(*, campaign_id: int, changes: dict[str, Any]) -> Campaign:
    """Change a campaign's writable fields; capacity never drops below its applicants."""
    unknown = set(changes) - CAMPAIGN_WRITABLE_FIELDS
    if unknown:
        raise ValueError(f"not writable: {sorted(unknown)}")
    # The row lock orders this change against applications taking seats meanwhile.
    campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound("No such campaign.")
    campaign_check(campaign=campaign, changes=changes, now=timezone.now())
    if not changes:
        return campaign
    for name, value in changes.items():
        setattr(campaign, name, value)
    _save_campaign(campaign, update_fields=sorted(changes))
    return campaign


def _refusal(*, campaign_id: int, user: User, now: datetime) -> DomainError | None:
    """Why a seat could not be taken, or None if the campaign has room again."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None or campaign.status == Campaign.Status.DRAFT:
        return NotFound("No such campaign.")
    if Application.objects.filter(campaign_id=campaign_id, user=user).exists():
        return Conflict("You have already applied to this campaign.", code="already_applied")
    if campaign.status == Campaign.Status.CLOSED:
        return Conflict("This campaign is closed.", code="campaign_closed")
    if campaign.deadline <= now:
        return Conflict("This campaign's deadline has passed.", code="deadline_passed")
    if campaign.applicant_count >= campaign.max_reviewers:
        return Conflict("This campaign has no seats left.", code="campaign_full")
    return None


@transaction.atomic
def campaign_apply(*, campaign_id: int, user: User, message: str = "") -> Application:
    """Apply to an active campaign before its deadline, taking one of its seats."""
    now = timezone.now()
    for _attempt in range(2):
        # The seat first: the row lock queues concurrent applicants, and the WHERE clause is
        # re-checked against the latest row, so the campaign can never be overfilled.
        taken = Campaign.objects.filter(
            pk=campaign_id,
            status=Campaign.Status.ACTIVE,
            deadline__gt=now,
            applicant_count__lt=F("max_reviewers"),
        ).update(applicant_count=F("applicant_count") + 1)
        if taken:
            break
        refusal = _refusal(campaign_id=campaign_id, user=user, now=now)
        if refusal is not None:
            raise refusal
        # A rejection freed a seat between the UPDATE and the read: try once more.
    else:
        raise Conflict("This campaign has no seats left.", code="campaign_full")
    try:
        with transaction.atomic():
            application = Application.objects.create(
                campaign_id=campaign_id, user=user, message=message, created_at=now
            )
    except IntegrityError as exc:
        if _constraint_name(exc) != "application_one_per_user_campaign":
            raise
        # Raising rolls the whole transaction back, seat included.
        raise Conflict("You have already applied to this campaign.", code="already_applied") from exc
    notifications.notify(
        user_id=user.pk,
        kind="review.application_received",
        subject="We received your application",
        body=f"Your application {application.pk} to campaign {campaign_id} is pending review.",
    )
    return application


@transaction.atomic
def application_decide(*, application_id: int, status: str) -> Application:
    """Approve or reject a pending application; a rejection gives its seat back."""
    if status not in (Application.Status.APPROVED, Application.Status.REJECTED):
        raise Invalid("Choose approved or rejected.", field="status")
    application = Application.objects.select_for_update().filter(pk=application_id).first()
    if application is None:
        raise NotFound("No such application.")
    if application.status != Application.Status.PENDING:
        raise Conflict(f"This application was already {application.status}.", code="already_decided")
    application.status = status
    application.decided_at = timezone.now()
    application.save(update_fields=["status", "decided_at"])
    if status == Application.Status.REJECTED:
        Campaign.objects.filter(pk=application.campaign_id).update(applicant_count=F("applicant_count") - 1)
    notifications.notify(
        user_id=application.user_id,
        kind="review.application_decided",
        subject=f"Your application was {status}",
        body=f"Your application {application.pk} to campaign {application.campaign_id} was {status}.",
    )
    return application


@transaction.atomic
def application_delete(*, application_id: int) -> None:
    """Delete an application (admin); a pending or approved one gives its seat back."""
    application = Application.objects.select_for_update().filter(pk=application_id).first()
    if application is None:
        return
    if application.status != Application.Status.REJECTED:
        Campaign.objects.filter(pk=application.campaign_id).update(applicant_count=F("applicant_count") - 1)
    application.delete()


@transaction.atomic
def campaigns_close_past_deadline(*, now: datetime) -> int:
    """Close every active campaign whose deadline has come; returns how many closed."""
    return Campaign.objects.filter(status=Campaign.Status.ACTIVE, deadline__lte=now).update(
        status=Campaign.Status.CLOSED
    )
