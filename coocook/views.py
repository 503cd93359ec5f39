"""coocook HTTP views: thin, over services and selectors."""

from __future__ import annotations

from decimal import Decimal

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from coocook import selectors, services
from coocook.permissions import IsStaff, can_edit_chef
from coocook.serializers import (
    BookingCreateSerializer,
    BookingSerializer,
    ChefSerializer,
    ChefWriteSerializer,
    ErrorSerializer,
    ReviewCreateSerializer,
    ReviewSerializer,
    paginated,
)
from platform_core.idempotency import idempotent
from softfactory.api import (
    MAX_PER_PAGE,
    Forbidden,
    NotFound,
    choice_param,
    decimal_param,
    paginated_response,
    text_param,
)

MAX_BIGINT = 2**63 - 1
MIN_RATING, MAX_RATING = Decimal("0"), Decimal("5")

ERRORS = {
    400: OpenApiResponse(description="Invalid input: {field: [messages]}"),
    401: OpenApiResponse(description="No, invalid or revoked credentials"),
    403: OpenApiResponse(ErrorSerializer, description="The caller may see this but not do that: {detail, code}"),
    404: OpenApiResponse(ErrorSerializer, description="Not found or not visible to the caller: {detail, code}"),
    409: OpenApiResponse(ErrorSerializer, description="Conflict with the current state: {detail, code}"),
}
PAGE_PARAMETERS = [
    OpenApiParameter("page", OpenApiTypes.INT, description="1-based page number (default 1)."),
    OpenApiParameter("per_page", OpenApiTypes.INT, description=f"1..{MAX_PER_PAGE} (default 12)."),
]
ID_PARAMETER = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="1..255 characters; a retry with the same key and body replays the first answer.",
)


def _id(pk: str) -> int:
    """Path ids beyond bigint can't exist: not found rather than an overflow."""
    value = int(pk)
    if value > MAX_BIGINT:
        raise NotFound("Not found.")
    return value


class ChefViewSet(viewsets.ViewSet):
    lookup_value_regex = "[0-9]+"

    def get_permissions(self) -> list[BasePermission]:
        if self.action == "create":
            return [IsStaff()]
        if self.action in ("update", "partial_update"):
            return [IsAuthenticated()]
        return [AllowAny()]

    @extend_schema(
        parameters=[
            OpenApiParameter("cuisine", OpenApiTypes.STR, description="Exact cuisine type."),
            OpenApiParameter("min_rating", OpenApiTypes.DECIMAL, description="0..5"),
            OpenApiParameter("q", OpenApiTypes.STR, description="Case-insensitive substring of the name."),
            OpenApiParameter(
                "ordering", OpenApiTypes.STR, enum=list(selectors.CHEF_ORDERINGS), description="Default -rating."
            ),
            *PAGE_PARAMETERS,
        ],
        responses={200: paginated(ChefSerializer), 400: ERRORS[400], 401: ERRORS[401]},
    )
    def list(self, request: Request) -> HttpResponse:
        # Only these parameters, validated and normalised, reach the cache key (docs/CACHING.md).
        return selectors.cached_chef_list(
            request=request,
            cuisine=text_param(request, "cuisine", max_length=50),
            min_rating=decimal_param(request, "min_rating", minimum=MIN_RATING, maximum=MAX_RATING),
            q=text_param(request, "q", max_length=150),
            ordering=choice_param(request, "ordering", list(selectors.CHEF_ORDERINGS), default=None)
            or selectors.DEFAULT_CHEF_ORDERING,
        )

    @extend_schema(parameters=[ID_PARAMETER], responses={200: ChefSerializer, 401: ERRORS[401], 404: ERRORS[404]})
    def retrieve(self, request: Request, pk: str) -> HttpResponse:
        return selectors.cached_chef(request=request, chef_id=_id(pk))

    @extend_schema(
        request=ChefWriteSerializer,
        responses={
            201: ChefSerializer,
            400: ERRORS[400],
            401: ERRORS[401],
            403: OpenApiResponse(ErrorSerializer, description="Staff only"),
        },
    )
    def create(self, request: Request) -> Response:
        payload = ChefWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        chef = services.chef_create(**payload.validated_data)
        return Response(ChefSerializer(chef).data, status=status.HTTP_201_CREATED)

    def _update(self, request: Request, pk: str, *, partial: bool) -> Response:
        chef = selectors.chef_visible_to(user=request.user, chef_id=_id(pk))
        if not can_edit_chef(request.user, chef):
            raise Forbidden("Only staff and the chef's own user can change this chef.")
        payload = ChefWriteSerializer(data=request.data, partial=partial)
        payload.is_valid(raise_exception=True)
        chef = services.chef_update(chef=chef, by=request.user, changes=dict(payload.validated_data))
        return Response(ChefSerializer(chef).data)

    @extend_schema(
        parameters=[ID_PARAMETER],
        request=ChefWriteSerializer,
        responses={200: ChefSerializer, 400: ERRORS[400], 401: ERRORS[401], 403: ERRORS[403], 404: ERRORS[404]},
    )
    def update(self, request: Request, pk: str) -> Response:
        return self._update(request, pk, partial=False)

    @extend_schema(
        parameters=[ID_PARAMETER],
        request=ChefWriteSerializer,
        responses={200: ChefSerializer, 400: ERRORS[400], 401: ERRORS[401], 403: ERRORS[403], 404: ERRORS[404]},
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        return self._update(request, pk, partial=True)

    @extend_schema(
        parameters=[ID_PARAMETER, *PAGE_PARAMETERS],
        responses={200: paginated(ReviewSerializer), 400: ERRORS[400], 401: ERRORS[401], 404: ERRORS[404]},
    )
    @action(detail=True, methods=["get"])
    def reviews(self, request: Request, pk: str) -> HttpResponse:
        return selectors.cached_chef_reviews(request=request, chef_id=_id(pk))


class BookingViewSet(viewsets.ViewSet):
    permission_classes = [IsAuthenticated]
    lookup_value_regex = "[0-9]+"

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: paginated(BookingSerializer), 400: ERRORS[400], 401: ERRORS[401]},
    )
    def list(self, request: Request) -> Response:
        return paginated_response(request, selectors.bookings_for(user=request.user), BookingSerializer)

    @extend_schema(parameters=[ID_PARAMETER], responses={200: BookingSerializer, 401: ERRORS[401], 404: ERRORS[404]})
    def retrieve(self, request: Request, pk: str) -> Response:
        booking = selectors.booking_visible_to(user=request.user, booking_id=_id(pk))
        return Response(BookingSerializer(booking).data)

    @extend_schema(
        parameters=[IDEMPOTENCY_KEY],
        request=BookingCreateSerializer,
        responses={
            201: BookingSerializer,
            400: ERRORS[400],
            401: ERRORS[401],
            409: OpenApiResponse(ErrorSerializer, description="booking_overlap, or the Idempotency-Key is in use"),
            422: OpenApiResponse(ErrorSerializer, description="Idempotency-Key reused with a different body"),
        },
    )
    @idempotent
    def create(self, request: Request) -> Response:
        payload = BookingCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        booking = services.booking_create(user=request.user, **payload.validated_data)  # type: ignore[arg-type]
        return Response(BookingSerializer(booking).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[ID_PARAMETER],
        request=None,
        responses={200: BookingSerializer, 401: ERRORS[401], 404: ERRORS[404], 409: ERRORS[409]},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        booking = services.booking_cancel(booking_id=_id(pk), by=request.user)
        return Response(BookingSerializer(booking).data)

    @extend_schema(
        parameters=[ID_PARAMETER, *PAGE_PARAMETERS],
        responses={200: paginated(ReviewSerializer), 400: ERRORS[400], 401: ERRORS[401], 404: ERRORS[404]},
    )
    @action(detail=True, methods=["get"])
    def reviews(self, request: Request, pk: str) -> Response:
        booking = selectors.booking_visible_to(user=request.user, booking_id=_id(pk))
        return paginated_response(request, selectors.reviews_of_booking(booking=booking), ReviewSerializer)


class ReviewViewSet(viewsets.ViewSet):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=ReviewCreateSerializer,
        responses={201: ReviewSerializer, 400: ERRORS[400], 401: ERRORS[401], 404: ERRORS[404], 409: ERRORS[409]},
    )
    def create(self, request: Request) -> Response:
        payload = ReviewCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        review = services.review_create(user=request.user, **payload.validated_data)  # type: ignore[arg-type]
        return Response(ReviewSerializer(review).data, status=status.HTTP_201_CREATED)
