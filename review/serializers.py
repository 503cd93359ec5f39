"""Input and output shapes of the review API (API.md "review")."""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from review.models import Application, Campaign
from softfactory.api import AwareDateTimeField, money_field
from softfactory.serializers import ModelSerializer

MAX_REVIEWERS_LIMIT = 1_000_000
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")

CAMPAIGN_FIELDS = (
    "id",
    "title",
    "brand",
    "category",
    "description",
    "status",
    "reward",
    "currency",
    "max_reviewers",
    "applicant_count",
    "deadline",
    "created_at",
)


def choice_field(choices: list[str], **kwargs: Any) -> serializers.ChoiceField:
    """A ChoiceField whose error lists the choices instead of echoing the input.

    DRF's message repeats the input, and a lone surrogate in it would make the JSON
    renderer fail (a 500) while rendering the 400.
    """
    kwargs.setdefault("error_messages", {"invalid_choice": f"Choose one of: {', '.join(choices)}."})
    return serializers.ChoiceField(choices=choices, **kwargs)


class CampaignSerializer(ModelSerializer[Campaign]):
    reward = money_field(read_only=True)

    class Meta:
        model = Campaign
        fields = CAMPAIGN_FIELDS
        read_only_fields = CAMPAIGN_FIELDS


class CampaignWriteSerializer(serializers.Serializer[Any]):
    """POST body (PATCH: the same fields, each optional); unknown fields are ignored."""

    title = serializers.CharField(max_length=200)
    brand = serializers.CharField(max_length=100)
    category = serializers.CharField(max_length=50)
    description = serializers.CharField(max_length=10_000, allow_blank=True, required=False)
    reward = money_field()
    currency = serializers.CharField(max_length=3, required=False, help_text="ISO 4217 code; defaults to KRW")
    max_reviewers = serializers.IntegerField(min_value=1, max_value=MAX_REVIEWERS_LIMIT)
    deadline = AwareDateTimeField(help_text="ISO 8601 with a UTC offset, in the future")
    status = choice_field(Campaign.Status.values, required=False, help_text="draft (default), active or closed")

    def validate_currency(self, value: str) -> str:
        if not _CURRENCY.match(value):
            raise serializers.ValidationError("A three-letter ISO 4217 code, e.g. KRW.")
        return value.upper()


class ApplicationSerializer(ModelSerializer[Application]):
    campaign_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = Application
        fields = ("id", "campaign_id", "message", "status", "created_at")
        read_only_fields = fields


class ApplicationCreateSerializer(serializers.Serializer[Any]):
    message = serializers.CharField(max_length=5_000, allow_blank=True, default="")


class ApplicationDecisionSerializer(serializers.Serializer[Any]):
    status = choice_field([Application.Status.APPROVED, Application.Status.REJECTED])


# --- documentation-only shapes ----------------------------------------------------------


# many=False: a page is one object, even on `list` actions (drf-spectacular would wrap it in an array).
class _PageSerializer(serializers.Serializer[Any]):
    count = serializers.IntegerField()
    page = serializers.IntegerField()
    per_page = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


@extend_schema_serializer(many=False)
class CampaignPageSerializer(_PageSerializer):
    results = CampaignSerializer(many=True)


@extend_schema_serializer(many=False)
class ApplicationPageSerializer(_PageSerializer):
    results = ApplicationSerializer(many=True)


class ReviewErrorSerializer(serializers.Serializer[Any]):
    """404 and 409 bodies."""

    detail = serializers.CharField()
    code = serializers.CharField()
