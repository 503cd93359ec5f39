"""HTTP caching and compression of API responses (API.md "HTTP caching", docs/CACHING.md).

* Every 200 answer to a GET or HEAD under /api/ carries an `ETag` (weak: the same bytes are
  sent gzip-compressed or not) and `If-None-Match` is honoured with a 304.
* `Cache-Control: public, no-cache` for public reads (responses a view marked with
  `mark_public`: the same for every caller) requested without credentials (no `Authorization`
  header, no session cookie) that set no cookie; `private, no-store` for every other response
  under /api/. `no-cache` makes clients and shared caches revalidate every time, so the server
  (and its never-stale cache) decides freshness; revalidation costs one 304.
* `CompressionMiddleware` is Django's GZipMiddleware (which adds random bytes to each gzip
  header against BREACH) minus the paths that answer with secrets (login tokens).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.middleware.gzip import GZipMiddleware
from django.utils.cache import get_conditional_response, patch_vary_headers

API_PREFIX = "/api/"
PUBLIC_ATTRIBUTE = "softfactory_public"
PUBLIC = "public, no-cache"
PRIVATE = "private, no-store"
# Responses here carry secrets (a new token on login) and echo client input: never compressed,
# so a BREACH-style attacker learns nothing from their length.
UNCOMPRESSED_PREFIXES = ("/api/auth/",)


def etag_for(content: bytes) -> str:
    """A weak validator of the body (weak: still valid once gzip-compressed)."""
    return f'W/"{hashlib.blake2b(content, digest_size=16).hexdigest()}"'


def mark_public(response: HttpResponseBase) -> None:
    """This response is the same for every caller: `public, no-cache` when asked for without credentials."""
    setattr(response, PUBLIC_ATTRIBUTE, True)


def has_credentials(request: HttpRequest) -> bool:
    return "HTTP_AUTHORIZATION" in request.META or settings.SESSION_COOKIE_NAME in request.COOKIES


class HttpCachingMiddleware:
    """ETag/304 on API GETs and the Cache-Control header of every API response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if not request.path.startswith(API_PREFIX):
            return response
        read = request.method in ("GET", "HEAD")
        public = (
            read
            and response.status_code == 200
            and getattr(response, PUBLIC_ATTRIBUTE, False)
            and not has_credentials(request)
            and not response.cookies
        )
        response["Cache-Control"] = PUBLIC if public else PRIVATE
        if public:
            # Public or private depends on the credentials (has_credentials): the Authorization
            # header and the session cookie.
            patch_vary_headers(response, ("Accept", "Authorization", "Cookie"))
        if read and response.status_code == 200 and isinstance(response, HttpResponse):
            if not response.has_header("ETag"):
                response["ETag"] = etag_for(response.content)
            return get_conditional_response(request, etag=response["ETag"], response=response) or response
        return response


class CompressionMiddleware(GZipMiddleware):
    """gzip for responses that carry no secrets (see UNCOMPRESSED_PREFIXES)."""

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if request.path.startswith(UNCOMPRESSED_PREFIXES):
            return response
        return super().process_response(request, response)
