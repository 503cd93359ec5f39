from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from platform_core.models import Payment, User
from softfactory.serializers import ModelSerializer

BOOKING_PAYABLE = "coocook.booking"  # the payable kind behind `booking_id` (registered by coocook)
MAX_BIGINT = 2**63 - 1


class RegisterSerializer(serializers.Serializer[Any]):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)
    name = serializers.CharField(min_length=1, max_length=150)


class LoginSerializer(serializers.Serializer[Any]):
    email = serializers.CharField(max_length=254)
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)


class UserSerializer(ModelSerializer[User]):
    class Meta:
        model = User
        fields = ("id", "email", "name")


class MeSerializer(ModelSerializer[User]):
    class Meta:
        model = User
        fields = ("id", "email", "name", "is_staff")


class LoginResponseSerializer(serializers.Serializer[Any]):
    token = serializers.CharField()
    user = UserSerializer()


class PaymentCreateSerializer(serializers.Serializer[Any]):
    booking_id = serializers.IntegerField(min_value=1, max_value=MAX_BIGINT)
    method = serializers.ChoiceField(choices=Payment.Method.choices)


class PaymentSerializer(ModelSerializer[Payment]):
    booking_id = serializers.IntegerField(source="payable_id", read_only=True)

    class Meta:
        model = Payment
        fields = ("id", "booking_id", "amount", "currency", "method", "status", "created_at")
        read_only_fields = fields


# many=False: a page is one object, even on the `list` action (drf-spectacular would wrap it in an array).
@extend_schema_serializer(many=False)
class PaymentPageSerializer(serializers.Serializer[Any]):
    """A page of payments (softfactory.api.paginated_response), for OpenAPI."""

    count = serializers.IntegerField()
    page = serializers.IntegerField()
    per_page = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = PaymentSerializer(many=True)
