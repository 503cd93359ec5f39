"""Django admin for chefs, bookings and reviews; actions go through coocook.services."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from coocook import services
from coocook.models import Booking, Chef, Review
from softfactory.api import DomainError


@admin.register(Chef)
class ChefAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "name",
        "cuisine_type",
        "hourly_rate",
        "currency",
        "rating",
        "review_count",
        "is_active",
        "owner",
        "created_at",
    )
    list_select_related = ("owner",)
    list_filter = ("is_active", "cuisine_type", "currency")
    search_fields = ("name", "cuisine_type", "owner__email")
    ordering = ("-id",)
    raw_id_fields = ("owner",)
    # Kept by review_create's UPDATE; editing them by hand would break the mean.
    readonly_fields = ("rating", "rating_total", "review_count", "created_at")
    fields = ("name", "cuisine_type", "bio", "hourly_rate", "currency", "is_active", "owner", *readonly_fields)
    actions = ("activate", "deactivate")

    @admin.action(description="Activate the selected chefs")
    def activate(self, request: HttpRequest, queryset: QuerySet[Chef]) -> None:
        changed = services.chefs_set_active(chef_ids=queryset.values_list("pk", flat=True), is_active=True)
        self.message_user(request, f"{changed} chef(s) activated.", messages.SUCCESS)

    @admin.action(description="Deactivate the selected chefs")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Chef]) -> None:
        changed = services.chefs_set_active(chef_ids=queryset.values_list("pk", flat=True), is_active=False)
        self.message_user(request, f"{changed} chef(s) deactivated.", messages.SUCCESS)


@admin.register(Booking)
class BookingAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "user",
        "chef",
        "booking_date",
        "start_time",
        "duration_hours",
        "guests",
        "status",
        "total_price",
        "currency",
        "created_at",
    )
    list_select_related = ("user", "chef")
    list_filter = ("status", "currency", "booking_date")
    search_fields = ("user__email", "chef__name")
    ordering = ("-id",)
    raw_id_fields = ("user", "chef")
    show_full_result_count = False  # a second COUNT over a million bookings buys nothing
    # Price, period and status follow the service rules: changed through the API or the actions.
    readonly_fields = (
        "user",
        "chef",
        "booking_date",
        "start_time",
        "duration_hours",
        "status",
        "total_price",
        "currency",
        "period",
        "created_at",
    )
    fields = ("guests", "notes", *readonly_fields)
    actions = ("cancel",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Booking | None = None) -> bool:
        return False

    @admin.action(description="Cancel the selected bookings (refunds paid ones)")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Booking]) -> None:
        cancelled, refused = 0, []
        for booking_id in queryset.values_list("pk", flat=True):
            try:
                services.booking_cancel(booking_id=booking_id, by=request.user)
            except DomainError as exc:
                refused.append(f"#{booking_id}: {exc.detail}")
            else:
                cancelled += 1
        self.message_user(request, f"{cancelled} booking(s) cancelled.", messages.SUCCESS)
        if refused:
            self.message_user(request, "Not cancelled: " + "; ".join(refused[:20]), messages.WARNING)


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ("id", "booking_id", "chef", "user", "rating", "created_at")
    list_select_related = ("chef", "user")
    list_filter = ("rating",)
    search_fields = ("comment", "chef__name", "user__email")
    ordering = ("-id",)
    show_full_result_count = False
    # Reviews are written by customers; staff may only moderate the comment.
    readonly_fields = ("booking", "chef", "user", "rating", "created_at")
    fields = ("comment", *readonly_fields)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Review | None = None) -> bool:
        return False
