"""Who may see and change chefs and bookings (the rules of API.md's coocook table)."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from coocook.models import Booking, Chef


def is_staff(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_staff)


def is_chef_owner(user: Any, chef: Chef) -> bool:
    return bool(getattr(user, "is_authenticated", False) and chef.owner_id is not None and chef.owner_id == user.pk)


def can_see_chef(user: Any, chef: Chef) -> bool:
    """Active chefs are public; an inactive one only to staff and its own user."""
    return chef.is_active or is_staff(user) or is_chef_owner(user, chef)


def can_edit_chef(user: Any, chef: Chef) -> bool:
    return is_staff(user) or is_chef_owner(user, chef)


def can_see_booking(user: Any, booking: Booking) -> bool:
    return is_staff(user) or (getattr(user, "is_authenticated", False) and booking.user_id == user.pk)


class IsStaff(BasePermission):
    """Staff only: anonymous callers get 401, other users 403."""

    message = "Only staff can do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return is_staff(request.user)
