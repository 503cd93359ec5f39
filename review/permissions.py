"""Who may do what in the review app (API.md "review")."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request


def _is_staff(request: Request) -> bool:
    return bool(request.user and request.user.is_authenticated and request.user.is_staff)


class IsStaff(BasePermission):
    """Staff only; an anonymous caller gets 401, any other user 403."""

    message = "Only staff can do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return _is_staff(request)


class IsStaffForObject(BasePermission):
    """Staff only, checked on an object the caller can already see (so others get 403, not 404)."""

    message = "Only staff can do this."

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        return _is_staff(request)
