"""Schemathesis hooks for tests/hardening/test_fuzz_schema.py (loaded by the CLI via SCHEMATHESIS_HOOKS).

The run authenticates as one account (SF_FUZZ_EMAIL / SF_FUZZ_PASSWORD on SF_FUZZ_BASE_URL):
- every operation but logout shares one token, fetched by logging in (and again after a 401);
- `POST /api/auth/logout` gets a brand-new token on every call, because logging out revokes the
  token it is sent with: sharing the run's token would turn every later case into a 401.
"""

from __future__ import annotations

import os
from typing import Any

import requests
import schemathesis

LOGOUT_PATH = "/api/auth/logout"


def _login() -> str:
    response = requests.post(
        f"{os.environ['SF_FUZZ_BASE_URL']}/api/auth/login",
        json={"email": os.environ["SF_FUZZ_EMAIL"], "password": os.environ["SF_FUZZ_PASSWORD"]},
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["token"])


def _set_token(case: Any, token: str) -> None:
    case.headers = {**(case.headers or {}), "Authorization": f"Token {token}"}


@schemathesis.auth(refresh_interval=None).apply_to(path=LOGOUT_PATH)
class FreshTokenForLogout:
    def get(self, case: Any, ctx: Any) -> str:
        return _login()

    def set(self, case: Any, data: str, ctx: Any) -> None:
        _set_token(case, data)


@schemathesis.auth().skip_for(path=LOGOUT_PATH)
class SharedToken:
    def get(self, case: Any, ctx: Any) -> str:
        return _login()

    def set(self, case: Any, data: str, ctx: Any) -> None:
        _set_token(case, data)
