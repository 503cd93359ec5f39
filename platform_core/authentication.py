"""Token authentication: `Authorization: Token <key>`, one token per login, stored hashed."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions

from platform_core.models import AuthToken, User, hash_token_key
from softfactory.db_router import use_primary


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's header parsing, our hashed, per-login tokens.

    Listed before session authentication, so an anonymous request gets 401 with
    `WWW-Authenticate: Token`.
    """

    model = AuthToken

    def authenticate_credentials(self, key: str) -> tuple[User, AuthToken]:
        # A token made a moment ago may not have reached a replica yet.
        with use_primary():
            token = AuthToken.objects.select_related("user").filter(key_hash=hash_token_key(key)).first()
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return token.user, token

    def authenticate_header(self, request: Any) -> str:
        return self.keyword
