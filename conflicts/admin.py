from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from lib.errors import ApplicationError, InvalidInput
from lib.ids import parse_id  # also registers <id:...>
from lib.timeutil import format_local_range, wall_clock_to_instant
from scheduler.models import Appointment

from .models import Conflict, ConflictKind
from .services import Resolution, conflict_resolve


@admin.register(Conflict)
class ConflictAdmin(admin.ModelAdmin):
    """The front desk's conflicts page: filter, open one, see both sides, resolve through the service."""

    list_display = ("id", "kind", "status", "therapist", "when_local", "appointment_ids", "detected_at")
    list_filter = (
        "status",
        "kind",
        "therapist",
        ("appointments__office", admin.RelatedOnlyFieldListFilter),
        "appointments__source_system",
    )
    list_select_related = ("therapist",)
    date_hierarchy = "start"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conflict]:
        return super().get_queryset(request).prefetch_related("appointments")

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not request.GET:
            return HttpResponseRedirect(f"{request.path}?status__exact=open")  # open ones first
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="When (therapist's time)", ordering="start")
    def when_local(self, obj: Conflict) -> str:
        if obj.start is None or obj.end is None:
            return "—"
        return format_local_range(obj.start, obj.end, obj.therapist.timezone if obj.therapist else "UTC")

    @admin.display(description="Appointments")
    def appointment_ids(self, obj: Conflict) -> str:
        return ", ".join(f"{a.pk} ({a.source_system})" for a in obj.appointments.all())

    def get_urls(self) -> list[Any]:
        resolve = path(
            "<id:pk>/resolve/",
            self.admin_site.admin_view(self.resolve_view),
            name="conflicts_conflict_resolve",
        )
        return [resolve, *super().get_urls()]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        conflict = self.get_object(request, object_id)
        if conflict is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, conflict):
            raise PermissionDenied
        appointments = conflict.appointments.select_related("therapist", "service", "office").order_by(
            "start"
        )
        rows = [
            {
                "appointment": a,
                "when": format_local_range(a.start, a.end, a.therapist.timezone),
                "link": reverse("admin:scheduler_appointment_change", args=[a.pk]),
                "movable": a.source_system == "hub" and a.is_occupying,
            }
            for a in appointments
        ]
        blocks = [
            {"block": b, "when": format_local_range(b.start, b.end, b.therapist.timezone)}
            for b in conflict.busy_blocks.select_related("therapist")
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{conflict.get_kind_display()} — conflict {conflict.pk}",
            "conflict": conflict,
            "rows": rows,
            "blocks": blocks,
            "can_resolve": conflict.status == Conflict.Status.OPEN
            and self.has_change_permission(request, conflict),
            "is_duplicate": conflict.kind == ConflictKind.DUPLICATE,
            "resolve_url": reverse("admin:conflicts_conflict_resolve", args=[conflict.pk]),
        }
        return TemplateResponse(request, "admin/conflicts/conflict/resolve.html", context)

    def resolve_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        back = reverse("admin:conflicts_conflict_change", args=[pk])
        if request.method != "POST":
            return HttpResponseRedirect(back)
        conflict = self.get_object(request, str(pk))
        if conflict is None or not self.has_change_permission(request, conflict):
            raise PermissionDenied
        action = request.POST.get("action", "")
        try:
            appointment = self._chosen_appointment(request, conflict)
            start = self._new_start(request, appointment) if action == Resolution.RESCHEDULE else None
            conflict_resolve(
                actor=request.user,
                conflict=conflict,
                action=action,
                appointment=appointment,
                start=start,
                note=request.POST.get("note", ""),
            )
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(back)
        self.message_user(request, f"Conflict {pk} resolved ({action}).", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:conflicts_conflict_changelist"))

    @staticmethod
    def _chosen_appointment(request: HttpRequest, conflict: Conflict) -> Appointment | None:
        raw = request.POST.get("appointment", "")
        if not raw:
            return None
        pk = parse_id(raw)
        chosen = conflict.appointments.filter(pk=pk).first() if pk is not None else None
        if chosen is None:
            raise InvalidInput("Choose one of the appointments in this conflict.")
        return chosen

    @staticmethod
    def _new_start(request: HttpRequest, appointment: Appointment | None) -> datetime:
        if appointment is None:
            raise InvalidInput("Choose the appointment to move.")
        try:
            day = datetime.strptime(request.POST.get("date", ""), "%Y-%m-%d").date()
            clock = time.fromisoformat(request.POST.get("time", ""))
        except ValueError as exc:
            raise InvalidInput("Give the new date (YYYY-MM-DD) and time (HH:MM).") from exc
        return wall_clock_to_instant(day, clock, appointment.therapist.timezone)
