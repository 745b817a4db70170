from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import admin
from django.http import HttpRequest

from .models import Conflict


@admin.register(Conflict)
class ConflictAdmin(admin.ModelAdmin):
    """Open conflicts for the front desk. Resolution actions come with the conflicts issue."""

    list_display = ("id", "kind", "status", "therapist", "when_local", "appointment_ids", "detected_at")
    list_filter = ("status", "kind", "therapist")
    date_hierarchy = "start"
    list_select_related = ("therapist",)
    readonly_fields = (
        "kind",
        "status",
        "fingerprint",
        "therapist",
        "start",
        "end",
        "detected_at",
        "resolution",
        "resolved_by",
        "resolved_at",
        "appointment_ids",
    )
    fields = readonly_fields + ("note",)

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("appointments")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="When (therapist's time)", ordering="start")
    def when_local(self, obj: Conflict) -> str:
        if obj.start is None:
            return "—"
        tz = ZoneInfo(obj.therapist.timezone) if obj.therapist else ZoneInfo("UTC")
        return f"{obj.start.astimezone(tz):%a %d %b %Y %H:%M %Z}"

    @admin.display(description="Appointments")
    def appointment_ids(self, obj: Conflict) -> str:
        return ", ".join(str(a.pk) for a in obj.appointments.all())
