"""Request bodies: a bounded JSON parser (400 on any parse failure, 413 when too large) and a
Content-Length check that answers 413 before any work. DATA_UPLOAD_MAX_MEMORY_SIZE doesn't cover
the stream DRF's JSON parser reads itself, and the stock parser lets RecursionError through on
deeply nested bodies."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, bounded: any parse failure (including RecursionError on deep nesting
    and bad encodings) is a 400, a body over API_MAX_BODY_BYTES is a 413, and nesting deeper
    than API_MAX_JSON_DEPTH is a 400. DATA_UPLOAD_MAX_MEMORY_SIZE doesn't cover DRF's own read."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        limit = settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestTooLarge()
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            data = json.loads(raw.decode(encoding), parse_constant=_reject_constant)
        except (ValueError, RecursionError, UnicodeDecodeError, LookupError) as exc:
            raise exceptions.ParseError(f"JSON parse error - {str(exc)[:200]}") from None
        if _depth_exceeds(data, settings.API_MAX_JSON_DEPTH):
            raise exceptions.ParseError(f"JSON nested deeper than {settings.API_MAX_JSON_DEPTH} levels.")
        return data


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


class BodySizeLimitMiddleware:
    """413 before any work for a declared Content-Length over API_MAX_BODY_BYTES."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        declared = request.META.get("CONTENT_LENGTH") or "0"
        try:
            too_large = int(declared) > settings.API_MAX_BODY_BYTES
        except ValueError:
            return JsonResponse({"detail": "Invalid Content-Length.", "code": "bad_request"}, status=400)
        if too_large:
            return JsonResponse({"detail": "The request body is too large.", "code": "request_too_large"}, status=413)
        return self.get_response(request)
