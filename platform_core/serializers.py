from __future__ import annotations

from typing import Any

from rest_framework import serializers

from platform_core.models import Payment, User

BOOKING_PAYABLE = "coocook.booking"  # the payable kind behind `booking_id` (registered by coocook)
MAX_BIGINT = 2**63 - 1


class RegisterSerializer(serializers.Serializer[Any]):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)
    name = serializers.CharField(min_length=1, max_length=150)


class LoginSerializer(serializers.Serializer[Any]):
    email = serializers.CharField(max_length=254)
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)


class UserSerializer(serializers.ModelSerializer[User]):
    class Meta:
        model = User
        fields = ("id", "email", "name")


class MeSerializer(serializers.ModelSerializer[User]):
    class Meta:
        model = User
        fields = ("id", "email", "name", "is_staff")


class LoginResponseSerializer(serializers.Serializer[Any]):
    token = serializers.CharField()
    user = UserSerializer()


class PaymentCreateSerializer(serializers.Serializer[Any]):
    booking_id = serializers.IntegerField(min_value=1, max_value=MAX_BIGINT)
    method = serializers.ChoiceField(choices=Payment.Method.choices)


class PaymentSerializer(serializers.ModelSerializer[Payment]):
    booking_id = serializers.IntegerField(source="payable_id", read_only=True)

    class Meta:
        model = Payment
        fields = ("id", "booking_id", "amount", "currency", "method", "status", "created_at")
        read_only_fields = fields
