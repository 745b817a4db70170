from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.services import audit_record
from lib.admin import AuditedModelAdmin

from .models import APIWriteQueue, Connection, SyncRun
from .services import connection_schedule, write_jobs_retry


class SyncRunInline(admin.TabularInline):
    model = SyncRun
    extra = 0
    max_num = 0
    can_delete = False
    fields = (
        "started_at",
        "finished_at",
        "status",
        "full_read",
        "fetched",
        "created",
        "updated",
        "cancelled",
        "unchanged",
        "errors",
    )
    readonly_fields = fields
    ordering = ("-started_at",)
    verbose_name_plural = "recent runs"

    def get_queryset(self, request: HttpRequest) -> QuerySet[SyncRun]:
        return super().get_queryset(request).order_by("-started_at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Connection)
class ConnectionAdmin(AuditedModelAdmin):
    """Status and schedule; credentials are never shown or edited here (they arrive through OAuth flows
    or `manage.py` commands)."""

    list_display = (
        "display_name",
        "platform",
        "therapist",
        "status",
        "last_synced_at",
        "next_run",
        "last_error",
    )
    list_filter = ("platform", "status")
    exclude = ("credentials", "cursor")
    readonly_fields = ("status", "last_synced_at", "last_error", "next_run")
    inlines = [SyncRunInline]
    actions = ["sync_now", "pause", "resume"]

    @admin.display(description="Next run")
    def next_run(self, obj: Connection) -> str:
        from django_celery_beat.models import PeriodicTask

        task = (
            PeriodicTask.objects.filter(name=f"sync connection {obj.pk}").select_related("interval").first()
        )
        if task is None or not task.enabled:
            return "not scheduled"
        every = f"every {task.interval.every} min" if task.interval else ""
        return f"{every} (last {task.last_run_at:%Y-%m-%d %H:%M} UTC)" if task.last_run_at else every

    def save_model(self, request: HttpRequest, obj: Connection, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        connection_schedule(connection=obj)

    @admin.action(description="Sync now", permissions=["change"])
    def sync_now(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        from .tasks import connection_sync_task

        for connection in queryset:
            connection_id = connection.pk
            audit_record(
                actor=request.user, action="integrations.connection.sync_requested", target=connection
            )
            transaction.on_commit(lambda cid=connection_id: connection_sync_task.delay(cid))
        self.message_user(request, f"Sync requested for {queryset.count()} connection(s).", messages.SUCCESS)

    def _set_status(self, request: HttpRequest, queryset: QuerySet[Connection], status: str) -> None:
        for connection in queryset:
            connection.status = status
            connection.save(update_fields=["status", "updated"])
            connection_schedule(connection=connection)
            audit_record(actor=request.user, action=f"integrations.connection.{status}", target=connection)

    @admin.action(description="Pause syncing", permissions=["change"])
    def pause(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        self._set_status(request, queryset, Connection.Status.PAUSED)

    @admin.action(description="Resume syncing", permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        self._set_status(request, queryset, Connection.Status.OK)


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
    actions = ["retry"]

    @admin.action(description="Send again now", permissions=["retry"])
    def retry(self, request: HttpRequest, queryset: QuerySet[APIWriteQueue]) -> None:
        n = write_jobs_retry(actor=request.user, jobs=queryset)
        self.message_user(
            request,
            f"{n} job{'' if n == 1 else 's'} will be sent again at the next drain (within a minute); "
            "jobs neither dead nor failed were left as they were.",
            messages.SUCCESS if n else messages.WARNING,
        )

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("integrations.retry_apiwritequeue")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
