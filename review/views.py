"""review HTTP views: thin, over services and selectors."""

from __future__ import annotations

from collections.abc import Sequence

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from platform_core.models import User
from review import selectors, services
from review.models import Application, Campaign
from review.permissions import IsStaff, IsStaffForObject
from review.serializers import (
    ApplicationCreateSerializer,
    ApplicationDecisionSerializer,
    ApplicationPageSerializer,
    ApplicationSerializer,
    CampaignPageSerializer,
    CampaignSerializer,
    CampaignWriteSerializer,
    ReviewErrorSerializer,
)
from softfactory.api import NotFound, choice_param, paginated_response, text_param

MAX_BIGINT = 2**63 - 1
CAMPAIGN_STATUSES = tuple(Campaign.Status.values)

ERRORS = {
    400: OpenApiResponse(OpenApiTypes.OBJECT, description="Invalid input: {field: [messages]}"),
    401: OpenApiResponse(ReviewErrorSerializer, description="No, invalid or revoked credentials"),
    403: OpenApiResponse(ReviewErrorSerializer, description="Staff only"),
    404: OpenApiResponse(ReviewErrorSerializer, description="Not found or not visible to the caller"),
}
PAGE_PARAMETERS = [
    OpenApiParameter("page", int, description="1 or more (default 1); a page past the end is empty"),
    OpenApiParameter("per_page", int, description="1..100 (default 12)"),
]


def _id(pk: str) -> int:
    """Path ids beyond bigint can't exist: not found, rather than an overflow."""
    value = int(pk)
    if value > MAX_BIGINT:
        raise NotFound("Not found.")
    return value


def _user(request: Request) -> User | None:
    return request.user if isinstance(request.user, User) else None


def _authenticated_user(request: Request) -> User:
    user = _user(request)
    if user is None:  # the permission classes already refused anonymous callers
        raise exceptions.NotAuthenticated()
    return user


class CampaignViewSet(viewsets.GenericViewSet[Campaign]):
    # Only for the schema generator and OPTIONS: the actions below pick their own serializers.
    queryset = Campaign.objects.none()
    serializer_class = CampaignSerializer
    lookup_value_regex = "[0-9]+"

    def get_permissions(self) -> Sequence[BasePermission]:
        if self.action in ("list", "retrieve", "metadata"):
            return [AllowAny()]
        if self.action == "create":
            return [IsStaff()]
        if self.action == "partial_update":
            return [IsAuthenticated(), IsStaffForObject()]
        return [IsAuthenticated()]

    @extend_schema(
        summary="List campaigns",
        parameters=[
            OpenApiParameter(
                "status",
                str,
                enum=list(CAMPAIGN_STATUSES),
                description="default active; draft is for staff only (400 for others); unknown values are 400",
            ),
            OpenApiParameter("category", str, description="exact category"),
            OpenApiParameter("q", str, description="case-insensitive substring of the title"),
            *PAGE_PARAMETERS,
        ],
        responses={200: CampaignPageSerializer, 400: ERRORS[400], 401: ERRORS[401]},
    )
    def list(self, request: Request) -> HttpResponse:
        campaign_status = choice_param(request, "status", CAMPAIGN_STATUSES, default=Campaign.Status.ACTIVE)
        viewer = _user(request)
        if campaign_status == Campaign.Status.DRAFT and not (viewer is not None and viewer.is_staff):
            raise exceptions.ValidationError({"status": ["Only staff can list draft campaigns."]})
        # Only these parameters, validated and normalised, reach the cache key (docs/CACHING.md).
        return selectors.cached_campaign_list(
            request=request,
            status=str(campaign_status),
            category=text_param(request, "category", max_length=50),
            q=text_param(request, "q", max_length=200),
        )

    @extend_schema(
        summary="One campaign (drafts: staff only)",
        responses={200: CampaignSerializer, 401: ERRORS[401], 404: ERRORS[404]},
    )
    def retrieve(self, request: Request, pk: str) -> HttpResponse:
        return selectors.cached_campaign(request=request, viewer=_user(request), campaign_id=_id(pk))

    @extend_schema(
        summary="Create a campaign (staff)",
        request=CampaignWriteSerializer,
        responses={201: CampaignSerializer, 400: ERRORS[400], 401: ERRORS[401], 403: ERRORS[403]},
    )
    def create(self, request: Request) -> Response:
        payload = CampaignWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        campaign = services.campaign_create(**payload.validated_data)
        return Response(CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a campaign (staff)",
        request=CampaignWriteSerializer(partial=True),
        responses={
            200: CampaignSerializer,
            400: ERRORS[400],
            401: ERRORS[401],
            403: ERRORS[403],
            404: ERRORS[404],
        },
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        campaign = selectors.campaign_visible_to(viewer=_authenticated_user(request), campaign_id=_id(pk))
        self.check_object_permissions(request, campaign)
        payload = CampaignWriteSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        campaign = services.campaign_update(campaign_id=campaign.pk, changes=dict(payload.validated_data))
        return Response(CampaignSerializer(campaign).data)

    @extend_schema(
        summary="Apply to a campaign",
        request=ApplicationCreateSerializer,
        responses={
            201: ApplicationSerializer,
            400: ERRORS[400],
            401: ERRORS[401],
            404: ERRORS[404],
            409: OpenApiResponse(
                ReviewErrorSerializer,
                description="code: already_applied, campaign_full, campaign_closed or deadline_passed",
            ),
        },
    )
    @action(detail=True, methods=["post"], url_path="applications")
    def applications(self, request: Request, pk: str) -> Response:
        payload = ApplicationCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        application = services.campaign_apply(
            campaign_id=_id(pk), user=_authenticated_user(request), message=payload.validated_data["message"]
        )
        return Response(ApplicationSerializer(application).data, status=status.HTTP_201_CREATED)


class ApplicationViewSet(viewsets.GenericViewSet[Application]):
    # Only for the schema generator and OPTIONS: the actions below pick their own serializers.
    queryset = Application.objects.none()
    serializer_class = ApplicationSerializer
    lookup_value_regex = "[0-9]+"

    def get_permissions(self) -> Sequence[BasePermission]:
        if self.action == "partial_update":
            return [IsAuthenticated(), IsStaffForObject()]
        return [IsAuthenticated()]

    @extend_schema(
        summary="My applications, newest first",
        parameters=PAGE_PARAMETERS,
        responses={200: ApplicationPageSerializer, 400: ERRORS[400], 401: ERRORS[401]},
    )
    def list(self, request: Request) -> Response:
        applications = selectors.applications_for(user=_authenticated_user(request))
        return paginated_response(request, applications, ApplicationSerializer)

    @extend_schema(
        summary="Approve or reject an application (staff)",
        request=ApplicationDecisionSerializer,
        responses={
            200: ApplicationSerializer,
            400: ERRORS[400],
            401: ERRORS[401],
            403: ERRORS[403],
            404: ERRORS[404],
            409: OpenApiResponse(ReviewErrorSerializer, description="code: already_decided"),
        },
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        application = selectors.application_visible_to(viewer=_authenticated_user(request), application_id=_id(pk))
        self.check_object_permissions(request, application)
        payload = ApplicationDecisionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        application = services.application_decide(
            application_id=application.pk, status=payload.validated_data["status"]
        )
        return Response(ApplicationSerializer(application).data)
