"""platform_core HTTP views: accounts, tokens, payments. Thin: validate, call a service, serialize."""

from __future__ import annotations

from django.contrib.auth import authenticate, login, logout
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from platform_core import selectors, services
from platform_core.idempotency import idempotent
from platform_core.models import AuthToken, User
from platform_core.permissions import RegistrationThrottle
from platform_core.serializers import (
    BOOKING_PAYABLE,
    LoginResponseSerializer,
    LoginSerializer,
    MeSerializer,
    PaymentCreateSerializer,
    PaymentPageSerializer,
    PaymentSerializer,
    RegisterSerializer,
    UserSerializer,
)
from softfactory.api import Forbidden, NotFound, paginated_response

ERRORS = {
    400: OpenApiResponse(description="Invalid input: {field: [messages]}"),
    401: OpenApiResponse(description="No, invalid or revoked credentials"),
    404: OpenApiResponse(description="Not found or not visible to the caller: {detail, code}"),
    409: OpenApiResponse(description="Conflict with the current state: {detail, code}"),
}


class RegisterView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [RegistrationThrottle]

    @extend_schema(
        request=RegisterSerializer,
        responses={201: UserSerializer, 400: ERRORS[400], 429: OpenApiResponse(description="Throttled")},
    )
    def post(self, request: Request) -> Response:
        payload = RegisterSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        user = services.user_register(**payload.validated_data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class LoginView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=LoginSerializer,
        responses={200: LoginResponseSerializer, 400: ERRORS[400], 429: OpenApiResponse(description="Throttled")},
    )
    def post(self, request: Request) -> Response:
        payload = LoginSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        email, password = payload.validated_data["email"], payload.validated_data["password"]
        try:
            services.login_failures_check(email=email)
        except services.LoginThrottled as exc:
            raise exceptions.Throttled(wait=exc.retry_after) from None
        user = authenticate(request._request, username=email, password=password)
        if user is None:
            services.login_failure_record(email=email)
            raise serializers.ValidationError({"non_field_errors": ["Unable to log in with the provided credentials."]})
        key = services.token_create(user=user)
        login(request._request, user)  # the session cookie, for browser clients
        return Response({"token": key, "user": UserSerializer(user).data})


class LogoutView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None, 401: ERRORS[401]})
    def post(self, request: Request) -> Response:
        if isinstance(request.auth, AuthToken):
            services.token_revoke(token=request.auth)
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: MeSerializer, 401: ERRORS[401]})
    def get(self, request: Request) -> Response:
        user: User = request.user  # type: ignore[assignment]
        return Response(MeSerializer(user).data)


class PaymentViewSet(viewsets.ViewSet):
    permission_classes = [IsAuthenticated]
    lookup_value_regex = "[0-9]+"

    @extend_schema(
        parameters=[
            OpenApiParameter("page", int, description="1 or more (default 1)."),
            OpenApiParameter("per_page", int, description="1..100 (default 12)."),
        ],
        responses={200: PaymentPageSerializer, 400: ERRORS[400], 401: ERRORS[401]},
    )
    def list(self, request: Request) -> Response:
        user: User = request.user  # type: ignore[assignment]
        return paginated_response(request, selectors.payments_for(user=user), PaymentSerializer)

    @extend_schema(responses={200: PaymentSerializer, 401: ERRORS[401], 404: ERRORS[404]})
    def retrieve(self, request: Request, pk: str) -> Response:
        user: User = request.user  # type: ignore[assignment]
        return Response(PaymentSerializer(selectors.payment_visible_to(user=user, payment_id=_id(pk))).data)

    @extend_schema(
        request=PaymentCreateSerializer,
        responses={201: PaymentSerializer, 400: ERRORS[400], 401: ERRORS[401], 404: ERRORS[404], 409: ERRORS[409]},
    )
    @idempotent
    def create(self, request: Request) -> Response:
        payload = PaymentCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        payment = services.payment_create(
            user=request.user,  # type: ignore[arg-type]
            payable_kind=BOOKING_PAYABLE,
            payable_id=payload.validated_data["booking_id"],
            method=payload.validated_data["method"],
        )
        return Response(PaymentSerializer(payment).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses={
            200: PaymentSerializer,
            401: ERRORS[401],
            403: OpenApiResponse(description="Staff only"),
            404: ERRORS[404],
            409: ERRORS[409],
        },
    )
    @action(detail=True, methods=["post"])
    def refund(self, request: Request, pk: str) -> Response:
        user: User = request.user  # type: ignore[assignment]
        payment = selectors.payment_visible_to(user=user, payment_id=_id(pk))
        if not user.is_staff:
            raise Forbidden("Only staff can refund payments.")
        return Response(PaymentSerializer(services.payment_refund(payment_id=payment.pk)).data)


def _id(pk: str) -> int:
    """Path ids beyond bigint can't exist: treat them as not found rather than overflow."""
    value = int(pk)
    if value > 2**63 - 1:
        raise NotFound("Not found.")
    return value
