"""coocook request and response shapes (API.md's coocook table)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from coocook.models import Booking, Chef, Review
from softfactory.api import money_field
from softfactory.serializers import ModelSerializer

MAX_BIGINT = 2**63 - 1
MAX_HOURLY_RATE_DIGITS = 10  # Chef.hourly_rate is numeric(10, 2)


@extend_schema_field({"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]$", "example": "19:00"})
class HourMinuteField(serializers.TimeField):
    """A wall-clock time as `HH:MM` (OpenAPI's `format: time` would promise seconds, RFC 3339)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("input_formats", ["%H:%M"])
        kwargs.setdefault("format", "%H:%M")
        super().__init__(**kwargs)


def _id_field(**kwargs: Any) -> serializers.IntegerField:
    """An object id: a positive bigint (larger numbers can't name a row, and would overflow)."""
    return serializers.IntegerField(min_value=1, max_value=MAX_BIGINT, **kwargs)


# --- chefs ------------------------------------------------------------------------------


class ChefSerializer(ModelSerializer[Chef]):
    hourly_rate = money_field(max_digits=MAX_HOURLY_RATE_DIGITS, read_only=True)
    rating = serializers.DecimalField(max_digits=3, decimal_places=2, read_only=True)

    class Meta:
        model = Chef
        fields = ("id", "name", "cuisine_type", "bio", "hourly_rate", "currency", "rating", "review_count", "is_active")
        read_only_fields = fields


class ChefWriteSerializer(serializers.Serializer[Any]):
    """Body of POST, PUT and PATCH /chefs; `is_active` and `owner_id` are for staff."""

    name = serializers.CharField(min_length=1, max_length=150)
    cuisine_type = serializers.CharField(min_length=1, max_length=50)
    bio = serializers.CharField(max_length=5000, allow_blank=True, required=False)
    hourly_rate = money_field(max_digits=MAX_HOURLY_RATE_DIGITS)
    currency = serializers.RegexField(
        r"^[A-Z]{3}$", max_length=3, error_messages={"invalid": "A three-letter ISO 4217 code, e.g. KRW."}
    )
    is_active = serializers.BooleanField(required=False)
    owner_id = _id_field(required=False, allow_null=True)


# --- bookings ---------------------------------------------------------------------------


class BookingCreateSerializer(serializers.Serializer[Any]):
    chef_id = _id_field()
    booking_date = serializers.DateField(help_text="Wall-clock date in BOOKING_TIME_ZONE (default Asia/Seoul).")
    start_time = HourMinuteField(help_text="HH:MM, wall-clock time in BOOKING_TIME_ZONE.")
    duration_hours = serializers.IntegerField(min_value=1, max_value=12)
    guests = serializers.IntegerField(min_value=1, max_value=20)
    notes = serializers.CharField(max_length=2000, allow_blank=True, required=False, default="")


class BookingSerializer(ModelSerializer[Booking]):
    chef_id = serializers.IntegerField(read_only=True)
    start_time = HourMinuteField(read_only=True)
    total_price = money_field(read_only=True)

    class Meta:
        model = Booking
        fields = (
            "id",
            "chef_id",
            "booking_date",
            "start_time",
            "duration_hours",
            "guests",
            "notes",
            "status",
            "total_price",
            "currency",
            "created_at",
        )
        read_only_fields = fields


# --- reviews ----------------------------------------------------------------------------


class ReviewCreateSerializer(serializers.Serializer[Any]):
    booking_id = _id_field()
    rating = serializers.IntegerField(min_value=1, max_value=5)
    comment = serializers.CharField(max_length=5000, allow_blank=True, required=False, default="")


class ReviewSerializer(ModelSerializer[Review]):
    booking_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = Review
        fields = ("id", "booking_id", "rating", "comment", "created_at")
        read_only_fields = fields


# --- documentation-only shapes ----------------------------------------------------------


class ErrorSerializer(serializers.Serializer[Any]):
    """404/409 bodies (API.md): a message and a machine-readable code."""

    detail = serializers.CharField()
    code = serializers.CharField()


_PAGINATED: dict[type[serializers.BaseSerializer[Any]], type[serializers.Serializer[Any]]] = {}


def paginated(item: type[serializers.BaseSerializer[Any]]) -> type[serializers.Serializer[Any]]:
    """The list envelope of softfactory.api.paginated_response around `item`, for OpenAPI."""
    if item in _PAGINATED:  # one class per item: OpenAPI component names must be unique
        return _PAGINATED[item]
    fields: dict[str, Any] = {
        "count": serializers.IntegerField(),
        "page": serializers.IntegerField(),
        "per_page": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": item(many=True),
    }
    name = f"Paginated{item.__name__.removesuffix('Serializer')}List"
    envelope = type(name, (serializers.Serializer,), {"__module__": __name__, **fields})
    # many=False: the envelope is one object, even on `list` actions (drf-spectacular would wrap it in an array).
    _PAGINATED[item] = extend_schema_serializer(many=False)(envelope)
    return _PAGINATED[item]
