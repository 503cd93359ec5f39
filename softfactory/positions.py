"""Read-your-writes positions: where a client's last write is in the primary's WAL.

After a request or task that wrote has committed, the primary's `pg_current_wal_insert_lsn()`
is recorded for its client: per user in Redis (short TTL, only ever raised), and in a signed
cookie for clients without a token (anonymous browsers, login responses). A later request of
that client reads only from replicas that have replayed it (softfactory.db_router).

Redis is read with a client that raises: "can't read the position" must not look like
"no position", or a client could read a replica that has not seen its write. Such a client
reads from the primary instead (counted in softfactory_routing_position_errors_total).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import DatabaseError, connections
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from softfactory import metrics
from softfactory.db_router import SAFE_METHODS, PositionUnavailable, routing_scope
from softfactory.replicas import parse_lsn

# Keep the larger of the stored and the new position (positions only move forward).
_SET_IF_GREATER = """
local current = redis.call('GET', KEYS[1])
if (not current) or tonumber(current) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
else
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
"""


def _user_key(user_id: int) -> str:
    return f"{settings.CACHES['default']['KEY_PREFIX']}:rr:pos:user:{user_id}"


def primary_position() -> int | None:
    """The primary's current WAL insert position, read after the writer's commit."""
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_insert_lsn()::text")
            return parse_lsn(cursor.fetchone()[0])
    except DatabaseError:
        return None


def record_for_user(user_id: int, lsn: int) -> bool:
    try:
        get_redis_connection("default").eval(
            _SET_IF_GREATER, 1, _user_key(user_id), lsn, settings.REPLICA_POSITION_TTL_SECONDS
        )
    except RedisError:
        metrics.ROUTING_POSITION_ERRORS.labels("write").inc()
        return False
    return True


def load_for_user(user_id: int) -> int | None:
    try:
        raw = get_redis_connection("default").get(_user_key(user_id))
    except RedisError as exc:
        raise PositionUnavailable(str(exc)) from exc
    return int(raw) if raw else None


def forget_user(user_id: int) -> None:
    try:
        get_redis_connection("default").delete(_user_key(user_id))
    except RedisError:
        metrics.ROUTING_POSITION_ERRORS.labels("forget").inc()


def load_from_cookie(request: HttpRequest) -> int | None:
    try:
        raw = request.get_signed_cookie(
            settings.REPLICA_POSITION_COOKIE,
            default=None,
            salt="softfactory.positions",
            max_age=settings.REPLICA_POSITION_TTL_SECONDS,
        )
    except signing.BadSignature:
        return None
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def _client_user_id(request: HttpRequest) -> int | None:
    resolver: Callable[[HttpRequest], int | None] = import_string(settings.ROUTING_CLIENT_RESOLVER)
    return resolver(request)


class RoutingMiddleware:
    """One routing scope per request; records the client's position when the request wrote."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        client: dict[str, Any] = {}

        def user_id() -> int | None:
            if "user_id" not in client:
                client["user_id"] = _client_user_id(request)
            return client["user_id"]

        def load() -> int | None:
            positions = [load_from_cookie(request)]
            uid = user_id()
            if uid is not None:
                positions.append(load_for_user(uid))
            found = [p for p in positions if p]
            return max(found) if found else None

        def forget() -> None:
            client["caught_up"] = True
            uid = user_id()
            if uid is not None:
                forget_user(uid)

        with routing_scope(unsafe_method=request.method not in SAFE_METHODS, position_loader=load) as state:
            state.on_all_caught_up = forget
            response = self.get_response(request)
            if state.wrote:
                self._record(request, response)
            elif client.get("caught_up") and settings.REPLICA_POSITION_COOKIE in request.COOKIES:
                response.delete_cookie(settings.REPLICA_POSITION_COOKIE)
        return response

    def _record(self, request: HttpRequest, response: HttpResponse) -> None:
        lsn = primary_position()
        if lsn is None:
            return
        user = getattr(request, "user", None)
        authenticated_user_id = user.pk if user is not None and user.is_authenticated else None
        if authenticated_user_id is not None:
            record_for_user(authenticated_user_id, lsn)
        if not request.headers.get("Authorization"):
            response.set_signed_cookie(
                settings.REPLICA_POSITION_COOKIE,
                str(lsn),
                salt="softfactory.positions",
                max_age=settings.REPLICA_POSITION_TTL_SECONDS,
                httponly=True,
                samesite="Lax",
                secure=settings.SESSION_COOKIE_SECURE,
            )
