"""Admin for campaigns and applications; every write goes through review.services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from review import services
from review.models import Application, Campaign
from softfactory.api import DomainError


class CampaignAdminForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = (
            "title",
            "brand",
            "category",
            "description",
            "status",
            "reward",
            "currency",
            "max_reviewers",
            "deadline",
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        creating = self.instance.pk is None
        names = cleaned if creating else self.changed_data
        changes = {
            name: cleaned[name] for name in names if name in services.CAMPAIGN_WRITABLE_FIELDS and name in cleaned
        }
        try:
            services.campaign_check(campaign=None if creating else self.instance, changes=changes, now=timezone.now())
        except DomainError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.detail)
        return cleaned


def _each(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    ids: list[int],
    call: Callable[[int], object],
    done: str,
) -> None:
    """Run one service call per selected row; report how many worked and why others didn't."""
    succeeded, failures = 0, []
    for pk in ids:
        try:
            call(pk)
        except DomainError as exc:
            failures.append(f"#{pk}: {exc.detail}")
        else:
            succeeded += 1
    if succeeded:
        modeladmin.message_user(request, f"{succeeded} {done}.", messages.SUCCESS)
    if failures:
        modeladmin.message_user(request, "Not changed: " + "; ".join(failures[:20]), messages.WARNING)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignAdminForm
    list_display = (
        "id",
        "title",
        "brand",
        "category",
        "status",
        "reward",
        "currency",
        "applicant_count",
        "max_reviewers",
        "deadline",
        "created_at",
    )
    list_display_links = ("id", "title")
    list_filter = ("status", "currency", "category")
    search_fields = ("title", "brand")
    ordering = ("-created_at", "id")
    readonly_fields = ("applicant_count", "created_at")
    show_full_result_count = False  # one count per page on a 100k-row table is enough
    actions = ("activate", "close")

    def save_model(self, request: HttpRequest, obj: Campaign, form: forms.ModelForm, change: bool) -> None:
        data = form.cleaned_data
        if change:
            changes = {name: data[name] for name in form.changed_data if name in services.CAMPAIGN_WRITABLE_FIELDS}
            services.campaign_update(campaign_id=obj.pk, changes=changes)
        else:
            fields = {name: data[name] for name in services.CAMPAIGN_WRITABLE_FIELDS if name in data}
            obj.pk = services.campaign_create(**fields).pk

    @admin.action(description="Activate the selected campaigns")
    def activate(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        _each(
            self,
            request,
            list(queryset.values_list("pk", flat=True)),
            lambda pk: services.campaign_update(campaign_id=pk, changes={"status": Campaign.Status.ACTIVE}),
            "campaign(s) activated",
        )

    @admin.action(description="Close the selected campaigns")
    def close(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        _each(
            self,
            request,
            list(queryset.values_list("pk", flat=True)),
            lambda pk: services.campaign_update(campaign_id=pk, changes={"status": Campaign.Status.CLOSED}),
            "campaign(s) closed",
        )


@admin.register(Application)
class ApplicationAdmin(admin.ModelAdmin):
    list_display = ("id", "campaign", "user", "status", "created_at", "decided_at")
    list_select_related = ("campaign", "user")
    list_filter = ("status",)
    search_fields = ("user__email", "campaign__title")
    ordering = ("-created_at", "id")
    raw_id_fields = ("campaign", "user")
    # Status changes keep the campaign's seat count: only the actions (services) make them.
    readonly_fields = ("campaign", "user", "status", "created_at", "decided_at")
    show_full_result_count = False
    actions = ("approve", "reject")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # users apply through the API, which takes a seat

    def delete_model(self, request: HttpRequest, obj: Application) -> None:
        services.application_delete(application_id=obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Application]) -> None:
        for pk in queryset.values_list("pk", flat=True):
            services.application_delete(application_id=pk)

    @admin.action(description="Approve the selected applications")
    def approve(self, request: HttpRequest, queryset: QuerySet[Application]) -> None:
        _each(
            self,
            request,
            list(queryset.values_list("pk", flat=True)),
            lambda pk: services.application_decide(application_id=pk, status=Application.Status.APPROVED),
            "application(s) approved",
        )

    @admin.action(description="Reject the selected applications")
    def reject(self, request: HttpRequest, queryset: QuerySet[Application]) -> None:
        _each(
            self,
            request,
            list(queryset.values_list("pk", flat=True)),
            lambda pk: services.application_decide(application_id=pk, status=Application.Status.REJECTED),
            "application(s) rejected",
        )
