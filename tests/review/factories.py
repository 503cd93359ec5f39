"""Factories for review campaigns and applications."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.db.models import F
from django.utils import timezone
from factory.django import DjangoModelFactory

from review.models import Application, Campaign
from tests.platform_core.factories import UserFactory


class CampaignFactory(DjangoModelFactory[Campaign]):
    class Meta:
        model = Campaign

    title = factory.Sequence(lambda n: f"Green Tea Serum review #{n}")
    brand = "Innisfree"
    category = "beauty"
    description = "Try it for two weeks and post an honest review."
    status = Campaign.Status.ACTIVE
    reward = Decimal("120.00")
    currency = "KRW"
    max_reviewers = 10
    applicant_count = 0
    deadline = factory.LazyFunction(lambda: timezone.now() + timedelta(days=14))


class ApplicationFactory(DjangoModelFactory[Application]):
    """An application that also takes its seat, as the service would."""

    class Meta:
        model = Application

    campaign = factory.SubFactory(CampaignFactory)
    user = factory.SubFactory(UserFactory)
    message = "I review skincare every week."
    status = Application.Status.PENDING

    @classmethod
    def _create(cls, model_class: type[Application], *args, **kwargs) -> Application:
        application = super()._create(model_class, *args, **kwargs)
        if application.status != Application.Status.REJECTED:
            Campaign.objects.filter(pk=application.campaign_id).update(applicant_count=F("applicant_count") + 1)
            application.campaign.refresh_from_db(fields=["applicant_count"])
        return application
