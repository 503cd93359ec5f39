"""A URLconf for read-your-writes tests: a token-authenticated write and a read that reports its server."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db.models.expressions import RawSQL
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from softfactory.db_router import current_state


class Items(APIView):
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        group = Group.objects.create(name=request.data["name"])
        return Response({"id": group.pk}, status=201)


class Item(APIView):
    permission_classes = [AllowAny]

    def get(self, request: Request, pk: int) -> Response:
        # Both reads go through the router and so to the same server (one per request).
        found = Group.objects.filter(pk=pk).exists()
        port, in_recovery = ContentType.objects.annotate(
            server_port=RawSQL("inet_server_port()", ()), in_recovery=RawSQL("pg_is_in_recovery()", ())
        ).values_list("server_port", "in_recovery").first() or (None, None)
        return Response({"found": found, "server_port": port, "in_recovery": in_recovery})


def boom(request: HttpRequest) -> JsonResponse:
    current_state().wrote = True
    raise RuntimeError("view failed after a write")


def state(request: HttpRequest) -> JsonResponse:
    s = current_state()
    return JsonResponse({"wrote": s.wrote, "replica": s.replica, "primary_depth": s.primary_depth})


urlpatterns = [
    path("rw/items", Items.as_view()),
    path("rw/items/<int:pk>", Item.as_view()),
    path("rw/boom", boom),
    path("rw/state", state),
    path("", include("softfactory.urls")),
]
