"""Admin for scheduled posts: browse and search them; status changes only through services."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from sns import services
from sns.models import SNSPost


@admin.register(SNSPost)
class SNSPostAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "platform", "status", "scheduled_at", "attempts", "published_at")
    list_filter = ("status", "platform")
    search_fields = ("content", "user__email")
    list_select_related = ("user",)
    ordering = ("-scheduled_at", "-id")
    # COUNT(*) over a million posts on every page view is not worth the "N total" label.
    show_full_result_count = False
    raw_id_fields = ("user",)
    actions = ("cancel_scheduled",)
    fieldsets = (
        (None, {"fields": ("user", "platform", "content", "status", "scheduled_at", "created_at")}),
        ("Publishing", {"fields": ("attempts", "max_attempts", "next_attempt_at", "published_at", "external_id")}),
        ("Errors", {"fields": ("last_error", "last_error_at")}),
        (
            "Claim and lease",
            {"fields": ("claim_token", "claimed_at", "lease_expires_at", "call_started_at", "idempotency_key")},
        ),
    )
    # Status and the claim/lease fencing are changed by compare-and-set updates only
    # (the API, the dispatcher, the action below); a form save would race with them.
    readonly_fields = (
        "user",
        "status",
        "scheduled_at",
        "created_at",
        "attempts",
        "max_attempts",
        "next_attempt_at",
        "published_at",
        "external_id",
        "last_error",
        "last_error_at",
        "claim_token",
        "claimed_at",
        "lease_expires_at",
        "call_started_at",
        "idempotency_key",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Posts are created through POST /api/sns/schedule, where the scheduling rules apply.
        return False

    @admin.action(description="Cancel selected scheduled posts", permissions=["change"])
    def cancel_scheduled(self, request: HttpRequest, queryset: QuerySet[SNSPost]) -> None:
        selected = list(queryset.values_list("pk", flat=True))
        cancelled = services.posts_cancel_scheduled(post_ids=selected)
        self.message_user(request, f"Cancelled {cancelled} scheduled post(s).", messages.SUCCESS)
        if skipped := len(selected) - cancelled:
            self.message_user(
                request, f"Left {skipped} post(s) unchanged: only scheduled posts can be cancelled.", messages.WARNING
            )
