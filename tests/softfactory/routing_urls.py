"""A URLconf for routing tests: views that report which server answered their reads."""

from django.contrib.contenttypes.models import ContentType
from django.db.models.expressions import RawSQL
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


def routed_read_identity() -> tuple[int, bool]:
    """Run an ORM read through the router and return (port, in recovery) of the server that ran it."""
    row = (
        ContentType.objects.annotate(
            server_port=RawSQL("inet_server_port()", ()), in_recovery=RawSQL("pg_is_in_recovery()", ())
        )
        .values_list("server_port", "in_recovery")
        .first()
    )
    assert row is not None
    return int(row[0]), bool(row[1])


@csrf_exempt
def where_reads_go(request: HttpRequest) -> JsonResponse:
    answers = {routed_read_identity() for _ in range(5)}
    return JsonResponse({"servers": sorted([port, recovery] for port, recovery in answers)})


urlpatterns = [path("where-reads-go", where_reads_go)]
