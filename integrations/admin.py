from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.services import audit_record
from lib.admin import AuditedModelAdmin, run_service_action
from lib.errors import InvalidInput
from lib.jsonutil import loads_bounded
from scheduler.models import IcsImport

from .ics_feed.services import ics_import_retry, ics_import_submit, import_window
from .models import APIWriteQueue, Connection, SyncRun
from .services import connection_schedule, connection_set_credentials, write_jobs_retry


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


class ConnectionForm(forms.ModelForm):
    """Credentials are write-only: the form never shows stored values, only the names of the keys held.
    A JSON object entered here is merged into them (a key set to null is removed); blank keeps them."""

    new_credentials = forms.CharField(
        label="Set credentials",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"}),
        help_text='A JSON object, e.g. {"client_id": "...", "client_secret": "..."}; see the platform\'s '
        "page in docs/. Stored encrypted, never shown again.",
    )

    class Meta:
        model = Connection
        fields = (
            "platform",
            "therapist",
            "display_name",
            "write_enabled",
            "config",
            "sync_interval_minutes",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        held = sorted((self.instance.credentials or {}).keys()) if self.instance.pk else []
        if held:
            self.fields["new_credentials"].help_text += f" Keys held now: {', '.join(held)}."

    def clean_new_credentials(self) -> dict[str, Any] | None:
        text = self.cleaned_data["new_credentials"].strip()
        if not text:
            return None
        try:
            value = loads_bounded(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from None
        if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
            raise forms.ValidationError("Enter a JSON object of named values.")
        return value


@admin.register(Connection)
class ConnectionAdmin(AuditedModelAdmin):
    """Status and schedule; credentials are write-only (Admins; front desk sees status, never them)."""

    form = ConnectionForm

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
    readonly_fields = ("status", "last_synced_at", "last_error", "sync_not_before", "next_run")
    inlines = [SyncRunInline]
    actions = ["sync_now", "pause", "resume"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        fields = list(super().get_fields(request, obj))
        if not self.has_change_permission(request, obj):
            fields.remove("new_credentials")  # view-only users (front desk) see no credential field at all
        return fields

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
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            new = form.cleaned_data.get("new_credentials")
            if new is not None:
                connection_set_credentials(actor=request.user, connection=obj, values=new)
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


class IcsImportForm(forms.ModelForm):
    """Upload form: the file goes to the import service, never into a model field as such."""

    file = forms.FileField(help_text="An .ics file (Google, Outlook, Apple, SimplePractice exports …).")
    first_day = forms.DateField(
        required=False, help_text="First day (therapist's zone). Default: 30 days ago."
    )
    last_day = forms.DateField(required=False, help_text="Last day, inclusive. Default: a year ahead.")

    class Meta:
        model = IcsImport
        fields = ["therapist", "as_busy"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        upload = data.get("file")
        if upload is not None and upload.size > settings.ICS_IMPORT_MAX_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size} bytes; the limit is {settings.ICS_IMPORT_MAX_BYTES}."
            )
        therapist = data.get("therapist")
        if therapist is not None:
            try:
                data["window"] = import_window(
                    therapist.timezone, data.get("first_day"), data.get("last_day")
                )
            except InvalidInput as exc:
                raise forms.ValidationError(exc.message) from None
        return data


@admin.register(IcsImport)
class IcsImportAdmin(admin.ModelAdmin):
    """Uploads and their progress. Small files are imported at once; larger ones by a worker (reload the
    page to follow the progress)."""

    form = IcsImportForm
    list_display = ("id", "therapist", "filename", "status", "progress_display", "summary", "created")
    list_filter = ("status", "therapist")
    readonly_fields = (
        "therapist",
        "filename",
        "size",
        "as_busy",
        "window_start",
        "window_end",
        "status",
        "progress_display",
        "summary",
        "error",
        "created_by",
        "created",
        "started_at",
        "finished_at",
    )

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["therapist", "file", "as_busy", "first_day", "last_day"]
        return self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else ()

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    actions = ["retry"]

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("scheduler.add_appointment")  # as POST /api/v1/imports/{id}/retry/

    @admin.action(description="Retry selected failed imports", permissions=["retry"])
    def retry(self, request: HttpRequest, queryset: QuerySet[IcsImport]) -> None:
        run_service_action(
            self,
            request,
            queryset,
            lambda job: ics_import_retry(actor=request.user, import_id=job.pk),
            "import(s) started again",
        )

    @admin.display(description="Progress")
    def progress_display(self, obj: IcsImport) -> str:
        return f"{obj.progress}% ({obj.stage or obj.status})"

    @admin.display(description="Result")
    def summary(self, obj: IcsImport) -> str:
        counts = obj.counts or {}
        if obj.status != IcsImport.Status.DONE:
            return obj.error[:200]
        return (
            f"{counts.get('events', 0)} events, {counts.get('occurrences', 0)} occurrences: "
            f"created {counts.get('created', 0)}, updated {counts.get('updated', 0)}, cancelled "
            f"{counts.get('cancelled', 0)}, unchanged {counts.get('unchanged', 0)}, errors "
            f"{len(counts.get('errors', []))}"
        )

    def save_model(self, request: HttpRequest, obj: IcsImport, form: Any, change: bool) -> None:
        data = form.cleaned_data
        therapist = data["therapist"]
        job = ics_import_submit(
            actor=request.user,
            therapist=therapist,
            data=data["file"].read(),
            window=data["window"],
            as_busy=data["as_busy"],
            filename=data["file"].name or "",
        )
        obj.pk = job.pk
        level = messages.ERROR if job.status == IcsImport.Status.FAILED else messages.INFO
        self.message_user(request, f"Import {job.pk}: {job.status}. {job.error}", level)

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        return None  # audited by the service
