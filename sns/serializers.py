"""sns: request and response shapes (API.md "sns")."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from sns.models import SNSPost
from sns.services import CONTENT_MAX_LENGTH
from softfactory.api import AwareDateTimeField
from softfactory.serializers import ModelSerializer


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers instead of silently turning them into text."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class SNSPostScheduleSerializer(serializers.Serializer[dict[str, Any]]):
    """Body of POST /api/sns/schedule; time rules (future, <= 365 days) live in the service."""

    platform = serializers.ChoiceField(choices=SNSPost.Platform.choices)
    # Kept as written (no trimming), but whitespace-only content is blank.
    content = StrictCharField(max_length=CONTENT_MAX_LENGTH, trim_whitespace=False)
    scheduled_at = AwareDateTimeField(
        required=False,
        allow_null=True,
        help_text="ISO 8601 with an offset; in the future, at most 365 days ahead. Omitted or null: now.",
    )

    def validate_content(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("This field may not be blank.")
        return value


class SNSPostScheduledSerializer(ModelSerializer[SNSPost]):
    """The 202 answer to a schedule request."""

    # Always "scheduled" here; documented as such.
    status = serializers.ChoiceField(choices=[SNSPost.Status.SCHEDULED.value], read_only=True)

    class Meta:
        model = SNSPost
        fields = ("id", "status", "scheduled_at")
        read_only_fields = fields


class SNSPostSerializer(ModelSerializer[SNSPost]):
    """A post as its owner sees it."""

    class Meta:
        model = SNSPost
        fields = ("id", "platform", "content", "status", "scheduled_at", "published_at", "attempts", "last_error")
        read_only_fields = fields

    def to_representation(self, instance: SNSPost) -> dict[str, Any]:
        data = super().to_representation(instance)
        # The worker may store "" on success; the contract says null when there is none.
        data["last_error"] = data["last_error"] or None
        return data


# --- documentation-only shapes (OpenAPI) -------------------------------------------------


# many=False: a page is one object, even on the `list` action (drf-spectacular would wrap it in an array).
@extend_schema_serializer(many=False)
class SNSPostPageSerializer(serializers.Serializer[Any]):
    """A page of posts (softfactory.api.paginated_response)."""

    count = serializers.IntegerField()
    page = serializers.IntegerField()
    per_page = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = SNSPostSerializer(many=True)


class SNSErrorSerializer(serializers.Serializer[Any]):
    """The `{"detail", "code"}` body of 401, 404, 409 and 422 answers."""

    detail = serializers.CharField()
    code = serializers.CharField()
