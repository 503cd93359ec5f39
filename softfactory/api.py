"""API conventions shared by every app (API.md "Conventions").

* `Pagination`: `?page=1&per_page=12`, strict bounds (400), exact `count`, absolute links,
  a page past the end is 200 with empty `results`; two queries per page (count + page), or one
  when the count is a stored one that rides along with the page (`stored_count`). A hot list
  (`ShapedList`) runs the same queries from SQL compiled once per query shape
  (softfactory.query_shapes) instead of building and compiling querysets on every request.
* `DomainError` and its subclasses: services raise them, `exception_handler` maps them to
  HTTP with `{"detail", "code"}` bodies (404 and 409 always carry a code).
* Strict query-parameter parsing (`choice_param`, `decimal_param`, ...): unknown values of
  `ordering`/`status` are 400; unknown parameters are ignored.
* `AwareDateTimeField`: timestamps must carry an offset (a naive one is 400).
"""

from __future__ import annotations

import copy
import decimal
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg2.errors
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.db.models import BigIntegerField, F, Func, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.dateparse import parse_datetime
from django.views.defaults import page_not_found as django_page_not_found
from django.views.defaults import server_error as django_server_error
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from softfactory.query_shapes import ShapedQuery

DEFAULT_PER_PAGE = 12
MAX_PER_PAGE = 100
PRIMARY_DOWN_RETRY_AFTER = "5"
CONFLICT_ERRORS = (psycopg2.errors.DeadlockDetected, psycopg2.errors.SerializationFailure)


# --- domain errors ----------------------------------------------------------------------


class DomainError(Exception):
    """A rule of the domain refused the request; services raise these, views don't catch them."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, detail: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.default_code
        self.field = field


class Invalid(DomainError):
    """400: the request is well-formed but breaks a rule (past start time, inactive chef...)."""


class NotFound(DomainError):
    """404: the object does not exist or the caller may not see it."""

    status_code = status.HTTP_404_NOT_FOUND
    default_code = "not_found"


class Forbidden(DomainError):
    """403: the caller can see the object but may not do this."""

    status_code = status.HTTP_403_FORBIDDEN
    default_code = "permission_denied"


class Conflict(DomainError):
    """409: the request conflicts with the current state (already cancelled, slot taken...)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class UnprocessableIdempotencyKey(DomainError):
    """422: an Idempotency-Key reused with a different body."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        if exc.status_code == status.HTTP_400_BAD_REQUEST:
            return Response({exc.field or "non_field_errors": [exc.detail]}, status=exc.status_code)
        return Response({"detail": exc.detail, "code": exc.code}, status=exc.status_code)
    if isinstance(exc, OperationalError) and isinstance(exc.__cause__, CONFLICT_ERRORS):
        # Deadlocks and serialization failures are races with another writer, not an outage.
        return Response(
            {"detail": "The request conflicted with a concurrent change; retry it.", "code": "concurrent_conflict"},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The primary is down or restarting: tell clients when to retry instead of a 500.
        unavailable = Response(
            {"detail": "The database is unavailable; retry shortly.", "code": "database_unavailable"},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
        unavailable["Retry-After"] = PRIMARY_DOWN_RETRY_AFTER
        return unavailable
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response: Response | None = drf_exception_handler(exc, context)
    data = response.data if response is not None else None
    if isinstance(exc, exceptions.APIException) and isinstance(data, dict) and "detail" in data and "code" not in data:
        codes = exc.get_codes()
        data["code"] = codes if isinstance(codes, str) else exc.default_code
    return response


# --- query parameters -------------------------------------------------------------------


def _bad_param(name: str, message: str) -> serializers.ValidationError:
    return serializers.ValidationError({name: [message]})


def int_param(request: Request, name: str, *, default: int, minimum: int, maximum: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad_param(name, "A valid integer is required.") from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise _bad_param(name, f"Must be {bounds}.")
    return value


def choice_param(request: Request, name: str, choices: Sequence[str], *, default: str | None) -> str | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw not in choices:
        raise _bad_param(name, f"Unknown value {raw[:50]!r}; choose one of: {', '.join(choices)}.")
    return raw


def decimal_param(
    request: Request, name: str, *, minimum: decimal.Decimal, maximum: decimal.Decimal
) -> decimal.Decimal | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = decimal.Decimal(raw)
    except decimal.InvalidOperation:
        raise _bad_param(name, "A valid number is required.") from None
    if not value.is_finite() or value < minimum or value > maximum:
        raise _bad_param(name, f"Must be between {minimum} and {maximum}.")
    return value


def text_param(request: Request, name: str, *, max_length: int = 100) -> str | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    value = raw.strip()
    if len(value) > max_length:
        raise _bad_param(name, f"At most {max_length} characters.")
    if "\x00" in value:
        raise _bad_param(name, "Null characters are not allowed.")
    return value or None


# --- pagination -------------------------------------------------------------------------


TOTAL_ANNOTATION = "_pagination_total"
STORED_TOTAL = "stored_total"


def stored_count(counts: QuerySet[Any], column: str = "n") -> QuerySet[Any]:
    """A one-value query: the sum of `column` over `counts` (rows of a stored-count table).

    `Func`, not `Sum`: a plain aggregate over the filtered rows, with no GROUP BY, usable as a
    scalar subquery.
    """
    return counts.annotate(**{STORED_TOTAL: Func(F(column), function="SUM")}).values(STORED_TOTAL)


def with_stored_total(queryset: QuerySet[Any], count: QuerySet[Any] | None) -> QuerySet[Any]:
    """The page query `Pagination.paginate` runs: with a stored count, the total rides along as an
    uncorrelated scalar subquery (evaluated once)."""
    if count is None:
        return queryset
    return queryset.annotate(**{TOTAL_ANNOTATION: Subquery(count, output_field=BigIntegerField())})


# build(**arguments) -> (the list's queryset, its stored_count query or None): what `paginate` takes.
PageBuild = Callable[..., tuple[QuerySet[Any], QuerySet[Any] | None]]


class ShapedList:
    """A paginated list whose page query is compiled once per query shape (softfactory.query_shapes).

    `values` are the arguments of `build` that are query values (None: absent); the others (an
    ordering, say) pick the SQL. `Pagination.paginate_shaped` reads it with the same queries and
    answers as `paginate(*build(**arguments))`, without building and compiling querysets.
    """

    def __init__(self, build: PageBuild, *, values: Iterable[str], name: str | None = None) -> None:
        self.build = build
        self.query: ShapedQuery[Any] = ShapedQuery(
            self._page_query, values=values, name=name or f"{build.__module__}.{build.__qualname__}"
        )

    def _page_query(self, **arguments: Any) -> QuerySet[Any]:
        return with_stored_total(*self.build(**arguments))


class Pagination:
    """`page`/`per_page` pagination with an exact count (API.md)."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.page = int_param(request, "page", default=1, minimum=1, maximum=10_000_000)
        self.per_page = int_param(request, "per_page", default=DEFAULT_PER_PAGE, minimum=1, maximum=MAX_PER_PAGE)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    def paginate(self, queryset: QuerySet[Any], *, count: int | QuerySet[Any] | None = None) -> tuple[list[Any], int]:
        """The page's rows and the exact total.

        `count`: None counts the queryset; an int is a total kept elsewhere; a `stored_count`
        query is read in the page's own query (an uncorrelated scalar subquery, evaluated once),
        so the page costs one round trip - two only when it is empty.
        """
        if isinstance(count, QuerySet):
            rows = list(with_stored_total(queryset, count)[self.offset : self.offset + self.per_page])
            if rows:
                return rows, int(getattr(rows[0], TOTAL_ANNOTATION) or 0)
            return [], self._stored_total(count)
        total = queryset.count() if count is None else count
        rows = list(queryset[self.offset : self.offset + self.per_page]) if self.offset < total else []
        return rows, total

    def paginate_shaped(self, pages: ShapedList, /, **arguments: Any) -> tuple[list[Any], int]:
        """`paginate(*pages.build(**arguments))`: the same queries and answers, from SQL compiled once
        per shape; a shape that could not be verified is read through `paginate` itself."""
        shape = pages.query.shape(arguments)
        if shape is None:
            queryset, count = pages.build(**arguments)
            return self.paginate(queryset, count=count)
        if TOTAL_ANNOTATION in shape.annotations:
            rows = shape.fetch(arguments, offset=self.offset, limit=self.per_page)
            if rows:
                return rows, int(getattr(rows[0], TOTAL_ANNOTATION) or 0)
            _queryset, count = pages.build(**arguments)  # an empty page is rare: the ORM reads the total
            if count is None:
                raise TypeError(f"{pages.query.name} annotates {TOTAL_ANNOTATION} without a stored count")
            return [], self._stored_total(count)
        total = shape.count(arguments)
        rows = shape.fetch(arguments, offset=self.offset, limit=self.per_page) if self.offset < total else []
        return rows, total

    def page_of(
        self,
        queryset: QuerySet[Any],
        serializer_class: type[serializers.BaseSerializer[Any]],
        *,
        count: int | QuerySet[Any] | None = None,
    ) -> dict[str, Any]:
        """One page envelope: count + page whatever the page size (`count`: see `paginate`)."""
        rows, total = self.paginate(queryset, count=count)
        return self._envelope_of(rows, total, serializer_class)

    def page_of_shaped(
        self, pages: ShapedList, serializer_class: type[serializers.BaseSerializer[Any]], /, **arguments: Any
    ) -> dict[str, Any]:
        """One page envelope of a ShapedList (what `page_of` makes of its queryset)."""
        rows, total = self.paginate_shaped(pages, **arguments)
        return self._envelope_of(rows, total, serializer_class)

    def _envelope_of(
        self, rows: list[Any], total: int, serializer_class: type[serializers.BaseSerializer[Any]]
    ) -> dict[str, Any]:
        data = serializer_class(rows, many=True, context={"request": self.request}).data
        return self.envelope(list(data), total)

    @staticmethod
    def _stored_total(count: QuerySet[Any]) -> int:
        totals = list(count.values_list(STORED_TOTAL, flat=True))
        return int(totals[0] or 0) if totals else 0

    def _link(self, page: int) -> str:
        params = self.request.query_params.copy()
        params["page"] = str(page)
        params["per_page"] = str(self.per_page)
        return self.request.build_absolute_uri(f"{self.request.path}?{params.urlencode()}")

    def envelope(self, results: list[Any], count: int) -> dict[str, Any]:
        last_page = max((count + self.per_page - 1) // self.per_page, 1)
        return {
            "count": count,
            "page": self.page,
            "per_page": self.per_page,
            "next": self._link(self.page + 1) if self.page < last_page else None,
            "previous": self._link(min(self.page - 1, last_page)) if self.page > 1 else None,
            "results": results,
        }


def paginated_response(
    request: Request,
    queryset: QuerySet[Any],
    serializer_class: type[serializers.BaseSerializer[Any]],
    *,
    count: int | None = None,
) -> Response:
    return Response(Pagination(request).page_of(queryset, serializer_class, count=count))


# --- fields -----------------------------------------------------------------------------


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 timestamp that must carry an offset; a naive one is refused (400).

    DRF's own field silently makes naive input aware in TIME_ZONE, so the raw string is
    checked first.
    """

    default_error_messages = {
        "naive": "Timestamps must include a UTC offset, e.g. 2030-01-01T09:00:00+09:00.",
    }

    def to_internal_value(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is None:
                self.fail("naive")
        return super().to_internal_value(value)


def money_field(**kwargs: Any) -> serializers.DecimalField:
    """Money as a two-place decimal string ("120.00")."""
    kwargs.setdefault("max_digits", 12)
    kwargs.setdefault("decimal_places", 2)
    kwargs.setdefault("min_value", decimal.Decimal("0"))
    return serializers.DecimalField(**kwargs)


# --- OpenAPI: answers any operation can give ------------------------------------------------

_OPENAPI_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
_ERROR_BODY = {
    "application/json": {
        "schema": {
            "type": "object",
            "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
            "required": ["detail", "code"],
        }
    }
}
_RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before retrying.", "required": True, "schema": {"type": "integer"}}
}
_COMMON_RESPONSES: dict[str, dict[str, Any]] = {
    "413": {"description": "The request body is over API_MAX_BODY_BYTES.", "content": _ERROR_BODY},
    # Answered by the HTTP server (gunicorn, the gateway) before Django: no JSON body.
    "414": {"description": "The request line (path and query string) is over the HTTP server's limit."},
    "431": {"description": "The request headers are over the HTTP server's limits."},
    "503": {
        "description": "The primary database is unavailable; retry after `Retry-After` seconds.",
        "content": _ERROR_BODY,
        "headers": _RETRY_AFTER,
    },
}


def schema_common_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: document the answers API.md gives on every operation."""
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in _OPENAPI_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for code, answer in _COMMON_RESPONSES.items():
                responses.setdefault(code, copy.deepcopy(answer))  # no shared nodes (YAML anchors)
    return result


def booking_time_zone() -> str:
    return str(settings.BOOKING_TIME_ZONE)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404 for unknown paths: the API's JSON shape under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    return django_page_not_found(request, exception or Http404())


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 handler. A database outage that surfaced outside a DRF view (a session saved
    by middleware on the way out, say) is still a 503 with Retry-After, never a 500."""
    exc = sys.exc_info()[1]
    if isinstance(exc, (OperationalError, InterfaceError)):
        unavailable = JsonResponse(
            {"detail": "The database is unavailable; retry shortly.", "code": "database_unavailable"}, status=503
        )
        unavailable["Retry-After"] = PRIMARY_DOWN_RETRY_AFTER
        return unavailable
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Internal server error.", "code": "server_error"}, status=500)
    return django_server_error(request)
