"""Idempotency-Key support for POST endpoints (API.md "Idempotency").

Scope: user, method, path and key. The key is checked before the body is validated:

* a request with a key that is still running elsewhere -> 409 (found with
  `pg_try_advisory_xact_lock`, so the duplicate answers at once instead of queueing);
* a key seen before with the same parsed JSON body -> the first 2xx response, replayed;
* with a different body -> 422.

The record is written in the same transaction as the write it protects: both commit or
neither does, so a crash between them can't remember a write that never happened (or
forget one that did). Only 2xx answers are remembered.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from platform_core.models import IdempotencyRecord
from softfactory.api import Conflict, UnprocessableIdempotencyKey

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# Response headers that are part of the answer a replay repeats (202 + Location of /api/sns/schedule).
REPLAYED_HEADERS = ("Location",)

V = TypeVar("V", bound=Callable[..., Response])


def _request_hash(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _lock_id(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def idempotent(view_method: V) -> V:
    """Decorate a DRF view method (e.g. `create`) to honour the Idempotency-Key header."""

    @functools.wraps(view_method)
    def wrapper(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return view_method(self, request, *args, **kwargs)
        if not 1 <= len(key) <= MAX_KEY_LENGTH:
            raise serializers.ValidationError({HEADER: [f"Must be 1 to {MAX_KEY_LENGTH} characters."]})
        user_id: int = request.user.pk  # type: ignore[assignment]  # idempotent views require a user
        method, path = request.method or "", request.path
        request_hash = _request_hash(request.data)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_lock_id(user_id, method, path, key)])
                if not cursor.fetchone()[0]:
                    raise Conflict(
                        "A request with this Idempotency-Key is still being processed.", code="idempotency_key_in_use"
                    )
            record = IdempotencyRecord.objects.filter(user_id=user_id, method=method, path=path, key=key).first()
            if record is not None:
                if record.request_hash != request_hash:
                    raise UnprocessableIdempotencyKey("This Idempotency-Key was used with a different request body.")
                replay = Response(record.response_body, status=record.response_status)
                for name, value in (record.response_headers or {}).items():
                    replay[name] = value
                replay["Idempotent-Replayed"] = "true"
                return replay
            response = view_method(self, request, *args, **kwargs)
            if 200 <= response.status_code < 300:
                IdempotencyRecord.objects.create(
                    user_id=user_id,
                    method=method,
                    path=path,
                    key=key,
                    request_hash=request_hash,
                    response_status=response.status_code,
                    response_body=json.loads(json.dumps(response.data, cls=DjangoJSONEncoder)),
                    response_headers={name: response[name] for name in REPLAYED_HEADERS if response.has_header(name)},
                )
            return response

    return wrapper  # type: ignore[return-value]
