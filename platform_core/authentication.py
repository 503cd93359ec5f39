"""Token authentication: `Authorization: Token <key>`, one token per login, stored hashed.

Tokens are cached in Redis (set at login, deleted at logout and when the user changes, read
from the primary on a miss), so checking a token neither reads a replica that may not have
the new token yet nor loads the primary on every request.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core.cache import cache
from django.http import HttpRequest
from drf_spectacular.authentication import SessionScheme
from rest_framework import authentication, exceptions

from platform_core.models import AuthToken, User, hash_token_key
from softfactory.db_router import use_primary
from softfactory.redis_direct import cache_get

TOKEN_CACHE_SECONDS = 300
_USER_FIELDS = ("id", "email", "name", "is_staff", "is_superuser", "is_active")


def token_cache_key(key_hash: str) -> str:
    return f"auth:token:{key_hash}"


def cache_token(token: AuthToken) -> dict[str, Any]:
    entry = {"token_id": token.pk, **{f: getattr(token.user, f) for f in _USER_FIELDS}}
    cache.set(token_cache_key(token.key_hash), entry, timeout=TOKEN_CACHE_SECONDS)
    return entry


def forget_tokens(key_hashes: list[str]) -> None:
    if key_hashes:
        cache.delete_many([token_cache_key(h) for h in key_hashes])


def _token_entry(request: HttpRequest | None, key: str) -> dict[str, Any] | None:
    """The cached token (memoised on the request: routing and DRF both ask), else the primary's row."""
    memo: dict[str, Any] = getattr(request, "_softfactory_tokens", {}) if request is not None else {}
    if key in memo:
        return memo[key]
    key_hash = hash_token_key(key)
    entry = cache_get("default", token_cache_key(key_hash))  # as cache.get, on a direct connection
    if entry is None:
        with use_primary():  # a token made a moment ago may not be on a replica yet
            token = AuthToken.objects.select_related("user").filter(key_hash=key_hash).first()
        entry = cache_token(token) if token is not None else None
    if request is not None:
        memo[key] = entry
        request._softfactory_tokens = memo  # type: ignore[attr-defined]
    return entry


def _token_from_header(request: HttpRequest) -> str | None:
    parts = request.headers.get("Authorization", "").split()
    if len(parts) == 2 and parts[0].lower() == "token":
        return parts[1]
    return None


def routing_client_id(request: HttpRequest) -> int | None:
    """Who the client is, for read-your-writes: from its token or its session, never a replica."""
    key = _token_from_header(request)
    if key is not None:
        entry = _token_entry(request, key)
        return int(entry["id"]) if entry else None
    session = getattr(request, "session", None)
    if session is not None:
        raw = session.get(SESSION_KEY)
        try:
            return int(raw) if raw is not None else None
        except (TypeError, ValueError):
            return None
    return None


def passes_authentication(request: HttpRequest) -> bool:
    """Would the API's authentication accept this request as it stands, without a session?

    True with no credentials at all (anonymous) or with an active token; a session cookie or
    any other Authorization header is for DRF to judge. The response cache answers public
    hits before DRF runs only to such callers (softfactory.cache.EarlyHitsMiddleware): everyone
    else gets DRF's own answer, a 401 for a revoked token included.
    """
    if settings.SESSION_COOKIE_NAME in request.COOKIES:
        return False
    if "HTTP_AUTHORIZATION" not in request.META:
        return True
    key = _token_from_header(request)
    if key is None:
        return False
    entry = _token_entry(request, key)
    return entry is not None and bool(entry["is_active"])


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's header parsing over our hashed, per-login, cached tokens.

    Listed before session authentication, so an anonymous request gets 401 with
    `WWW-Authenticate: Token`.
    """

    model = AuthToken

    def authenticate(self, request: Any) -> tuple[User, AuthToken] | None:
        self._request = request._request
        return super().authenticate(request)

    def authenticate_credentials(self, key: str) -> tuple[User, AuthToken]:
        entry = _token_entry(getattr(self, "_request", None), key)
        if entry is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        if not entry["is_active"]:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        user = User(**{f: entry[f] for f in _USER_FIELDS})
        user._state.adding = False
        user._state.db = "default"
        # Built by id first: assigning the relation on an instance with no database would ask the
        # router for a write database, and that would mark this read-only request as a writer.
        token = AuthToken(id=entry["token_id"], user_id=user.pk, key_hash=hash_token_key(key))
        token._state.adding = False
        token._state.db = "default"
        token.user = user
        return user, token

    def authenticate_header(self, request: Any) -> str:
        return self.keyword


class SessionAuthentication(authentication.SessionAuthentication):
    """DRF's session authentication, without loading a session the request has no cookie for.

    With no session cookie there is no session to find: DRF would still build Django's lazy user
    (a session lookup that can only come back empty) on every anonymous request.
    """

    def authenticate(self, request: Any) -> tuple[Any, None] | None:
        if settings.SESSION_COOKIE_NAME not in request._request.COOKIES:
            return None
        return super().authenticate(request)


class SessionAuthenticationScheme(SessionScheme):
    """OpenAPI (drf-spectacular): the session cookie scheme, as for DRF's own class."""

    target_class = "platform_core.authentication.SessionAuthentication"
