from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from lib.admin import AuditedModelAdmin

from .models import APIWriteQueue, Connection


@admin.register(Connection)
class ConnectionAdmin(AuditedModelAdmin):
    """Status and schedule; credentials are never shown or edited here (they arrive through OAuth flows)."""

    list_display = ("display_name", "platform", "therapist", "status", "write_enabled", "last_synced_at")
    list_filter = ("platform", "status")
    exclude = ("credentials", "cursor")
    readonly_fields = ("status", "last_synced_at", "last_error")


@admin.register(APIWriteQueue)
class APIWriteQueueAdmin(admin.ModelAdmin):
    list_display = (
        "job_id",
        "operation",
        "target_system",
        "connection",
        "appointment",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
    )
    list_filter = ("status", "target_system", "operation")
    readonly_fields = [f.name for f in APIWriteQueue._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
