"""sns HTTP views: thin, over services and selectors."""

from __future__ import annotations

from typing import cast

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from platform_core.idempotency import idempotent
from platform_core.models import User
from sns import selectors, services
from sns.models import SNSPost
from sns.serializers import (
    SNSErrorSerializer,
    SNSPostPageSerializer,
    SNSPostScheduledSerializer,
    SNSPostScheduleSerializer,
    SNSPostSerializer,
)
from softfactory.api import choice_param, paginated_response

UNAUTHENTICATED = OpenApiResponse(SNSErrorSerializer, description="No credentials, or an invalid or revoked token.")
NOT_FOUND = OpenApiResponse(SNSErrorSerializer, description="No such post, or it belongs to someone else.")
BAD_REQUEST = OpenApiResponse(OpenApiTypes.OBJECT, description='Invalid input: `{"field": ["message", ...]}`.')
POST_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The post's id.")


def _owner(request: Request) -> User:
    # IsAuthenticated (the default permission) has run: the user is a real account.
    return cast(User, request.user)


class PostScheduleView(APIView):
    """POST /api/sns/schedule."""

    @extend_schema(
        operation_id="sns_schedule",
        summary="Schedule a post",
        description=(
            "Schedules a post on one platform. Without `scheduled_at` the post is due at once. "
            "Honours `Idempotency-Key`: the same key and body replay the first answer; "
            "a different body is 422; a request still running with that key is 409."
        ),
        request=SNSPostScheduleSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key", str, OpenApiParameter.HEADER, description="1..255 characters; optional."
            ),
            OpenApiParameter(
                "Location", str, OpenApiParameter.HEADER, response=[202], description="/api/sns/posts/{id}"
            ),
        ],
        responses={
            202: SNSPostScheduledSerializer,
            400: BAD_REQUEST,
            401: UNAUTHENTICATED,
            409: OpenApiResponse(SNSErrorSerializer, description="A request with this Idempotency-Key is running."),
            422: OpenApiResponse(SNSErrorSerializer, description="This Idempotency-Key came with another body."),
        },
        tags=["sns"],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        payload = SNSPostScheduleSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        post = services.post_schedule(
            user=_owner(request),
            platform=payload.validated_data["platform"],
            content=payload.validated_data["content"],
            scheduled_at=payload.validated_data.get("scheduled_at"),
        )
        return Response(
            SNSPostScheduledSerializer(post).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": reverse("sns:post-detail", kwargs={"id": post.pk})},
        )


class PostViewSet(viewsets.GenericViewSet[SNSPost]):
    """The caller's own posts: list, read, cancel."""

    serializer_class = SNSPostSerializer
    lookup_url_kwarg = "id"
    # Anything up to the next slash reaches the view, so a malformed id is a JSON 404 too.
    lookup_value_regex = "[^/]+"

    @extend_schema(
        operation_id="sns_posts_list",
        summary="List own posts",
        description="Own posts, `scheduled_at` newest first, then id ascending.",
        parameters=[
            OpenApiParameter("status", str, enum=SNSPost.Status.values, description="Only posts in this status."),
            OpenApiParameter("page", int, description="1 or more (default 1)."),
            OpenApiParameter("per_page", int, description="1..100 (default 12)."),
        ],
        responses={200: SNSPostPageSerializer, 400: BAD_REQUEST, 401: UNAUTHENTICATED},
        tags=["sns"],
    )
    def list(self, request: Request) -> Response:
        post_status = choice_param(request, "status", SNSPost.Status.values, default=None)
        posts = selectors.post_list_for(user=_owner(request), status=post_status)
        return paginated_response(request, posts, SNSPostSerializer)

    @extend_schema(
        operation_id="sns_posts_retrieve",
        summary="Read one own post",
        parameters=[POST_ID],
        responses={200: SNSPostSerializer, 401: UNAUTHENTICATED, 404: NOT_FOUND},
        tags=["sns"],
    )
    def retrieve(self, request: Request, id: str) -> Response:
        post = selectors.post_get_for(user=_owner(request), post_id=id)
        return Response(SNSPostSerializer(post).data)

    @extend_schema(
        operation_id="sns_posts_cancel",
        summary="Cancel a scheduled post",
        description="Only a `scheduled` post can be cancelled; any other status is 409 `post_not_cancellable`.",
        request=None,
        parameters=[POST_ID],
        responses={
            200: SNSPostSerializer,
            401: UNAUTHENTICATED,
            404: NOT_FOUND,
            409: OpenApiResponse(SNSErrorSerializer, description="The post is not `scheduled` any more."),
        },
        tags=["sns"],
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, id: str) -> Response:
        post = selectors.post_get_for(user=_owner(request), post_id=id)
        return Response(SNSPostSerializer(services.post_cancel(post=post)).data)
