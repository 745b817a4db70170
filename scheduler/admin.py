from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from conflicts.engine import WorkingHoursError, parse_working_hours
from lib.admin import AuditedModelAdmin, run_service_action
from lib.errors import ApplicationError, InvalidInput
from lib.timeutil import format_local_range, wall_clock_to_instant

from . import selectors, services
from .models import (
    OCCUPYING_STATUSES,
    Appointment,
    AppointmentStatus,
    BusyBlock,
    Office,
    Patient,
    Service,
    SourceSystem,
    Therapist,
    TimeOff,
)

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


# --- therapists -------------------------------------------------------------------------------------


def _hours_field(example: str = "") -> forms.CharField:
    return forms.CharField(required=False, help_text=f"e.g. {example}" if example else "")


class TherapistForm(forms.ModelForm):
    """Weekly hours edited as one line per day, e.g. "09:00-12:00, 13:00-17:00"; empty = not working."""

    hours_monday = _hours_field("09:00-12:00, 13:00-17:00")
    hours_tuesday = _hours_field()
    hours_wednesday = _hours_field()
    hours_thursday = _hours_field()
    hours_friday = _hours_field()
    hours_saturday = _hours_field()
    hours_sunday = _hours_field()

    class Meta:
        model = Therapist
        fields = ["name", "email", "user", "timezone", "offices", "active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        hours = self.instance.working_hours or {}
        for day in DAYS:
            self.fields[f"hours_{day}"].label = day.capitalize()
            self.initial.setdefault(f"hours_{day}", ", ".join(hours.get(day, [])))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        hours = {d: [p.strip() for p in (data.get(f"hours_{d}") or "").split(",") if p.strip()] for d in DAYS}
        hours = {d: v for d, v in hours.items() if v}
        try:
            parse_working_hours(hours)
        except WorkingHoursError as exc:
            raise forms.ValidationError(f"Working hours: {exc}") from exc
        data["working_hours"] = hours
        return data


class TimeOffInline(admin.TabularInline):
    model = TimeOff
    extra = 0
    fields = ("start", "end", "reason")
    readonly_fields = ("start", "end", "reason")
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # through the Time off admin, which runs conflict detection


@admin.register(Therapist)
class TherapistAdmin(admin.ModelAdmin):
    form = TherapistForm
    list_display = ("name", "email", "timezone", "working_days", "active", "user", "calendar_feed")
    list_filter = ("active", "timezone", "offices")
    search_fields = ("name", "email")
    inlines = [TimeOffInline]
    actions = ["create_calendar_feed", "revoke_calendar_feed"]
    fieldsets = [
        (None, {"fields": ["name", "email", "user", "timezone", "offices", "active"]}),
        ("Weekly working hours (in the therapist's time zone)", {"fields": [f"hours_{d}" for d in DAYS]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Therapist]:
        return selectors.therapist_list_visible(viewer=request.user)

    @admin.display(description="Working days")
    def working_days(self, obj: Therapist) -> str:
        return ", ".join(d[:3].capitalize() for d in DAYS if d in (obj.working_hours or {})) or "—"

    @admin.display(description=".ics feed")
    def calendar_feed(self, obj: Therapist) -> str:
        feed = selectors.calendar_feed_token_active(therapist=obj)
        return f"active ({feed.prefix}…)" if feed else "—"

    @admin.action(description="Create or rotate the .ics feed URL (the old one stops working)")
    def create_calendar_feed(self, request: HttpRequest, qs: QuerySet[Therapist]) -> None:
        def create(therapist: Therapist) -> None:
            _, token = services.calendar_feed_token_create(actor=request.user, therapist=therapist)
            url = request.build_absolute_uri(reverse("calendar-feed", kwargs={"token": token}))
            # Shown once: only a hash of the token is stored.
            self.message_user(request, f"Feed URL for {therapist} (copy it now, it is shown once): {url}")

        run_service_action(self, request, qs, create, "feed URL(s) created")

    @admin.action(description="Revoke the .ics feed URL")
    def revoke_calendar_feed(self, request: HttpRequest, qs: QuerySet[Therapist]) -> None:
        def revoke(therapist: Therapist) -> None:
            services.calendar_feed_token_revoke(actor=request.user, therapist=therapist)

        run_service_action(self, request, qs, revoke, "feed URL(s) revoked")

    def save_model(self, request: HttpRequest, obj: Therapist, form: TherapistForm, change: bool) -> None:
        hours = form.cleaned_data["working_hours"]
        new_user = form.cleaned_data.get("user")
        if not change:
            created = services.therapist_create(
                actor=request.user,
                name=obj.name,
                email=obj.email,
                timezone=obj.timezone,
                working_hours=hours,
                user=new_user,
            )
            obj.pk, obj.user = created.pk, created.user
            return
        user_changed = "user" in form.changed_data
        previous_user = Therapist.objects.get(pk=obj.pk).user
        obj.user = previous_user
        obj.save()
        from audit.services import audit_record

        other = sorted(set(form.changed_data) - {"user", *(f"hours_{d}" for d in DAYS)})
        if other:
            audit_record(
                actor=request.user,
                action="scheduler.therapist.changed",
                target=obj,
                details={"fields": other},
            )
        if hours != (obj.working_hours or {}) or any(f.startswith("hours_") for f in form.changed_data):
            services.therapist_set_working_hours(actor=request.user, therapist=obj, working_hours=hours)
        if user_changed:
            services.therapist_link_user(actor=request.user, therapist=obj, user=new_user)


# --- appointments -----------------------------------------------------------------------------------


class AppointmentForm(forms.ModelForm):
    """Book or move a hub appointment in the therapist's own time zone; the service does the writing."""

    date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    start_time = forms.TimeField(
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text="In the therapist's time zone.",
    )
    duration_minutes = forms.IntegerField(
        min_value=5, max_value=24 * 60, required=False, help_text="Defaults to the service's first duration."
    )
    override_reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Admins only: book over an existing appointment, with a reason.",
    )

    class Meta:
        model = Appointment
        fields = ["therapist", "service", "type", "office", "patient_ref"]

    def __init__(self, *args: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        if self.instance.pk:
            local = self.instance.start.astimezone(ZoneInfo(self.instance.timezone))
            self.initial.update(
                date=local.date(),
                start_time=local.time(),
                duration_minutes=int((self.instance.end - self.instance.start).total_seconds() // 60),
            )
            for name in ("therapist", "service", "type", "office", "patient_ref"):
                if name in self.fields:  # a view-only page (external or finished) has no form fields
                    self.fields[name].disabled = True

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        therapist: Therapist = data.get("therapist") or self.instance.therapist
        service: Service | None = data.get("service") or (self.instance.service if self.instance.pk else None)
        minutes = data.get("duration_minutes") or (service.default_duration if service else None)
        if minutes is None:
            raise forms.ValidationError("Give a duration or choose a service.")
        actor = self.request.user if self.request else None
        # The service writes here, inside the admin's transaction, so its refusal becomes a form error.
        try:
            start = wall_clock_to_instant(data["date"], data["start_time"], therapist.timezone)
            end = start + timedelta(minutes=minutes)
            if self.instance.pk:
                self.instance = services.appointment_reschedule(
                    actor=actor,
                    appointment=self.instance,
                    start=start,
                    end=end,
                    override_reason=data.get("override_reason", ""),
                )
            else:
                self.instance = services.appointment_book(
                    actor=actor,
                    therapist=therapist,
                    start=start,
                    end=end,
                    service=service,
                    type=data.get("type") or "consult",
                    office=data.get("office"),
                    patient_ref=data.get("patient_ref") or "",
                    override_reason=data.get("override_reason", ""),
                )
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from exc
        return data


class ConflictFilter(admin.SimpleListFilter):
    title = "conflicts"
    parameter_name = "conflict"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("open", "In an open conflict")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Appointment]) -> QuerySet[Appointment]:
        if self.value() == "open":
            return queryset.filter(conflicts__status="open").distinct()
        return queryset


class WriteJobInline(admin.TabularInline):
    """The appointment's writes to external calendars: a dead one shows why it gave up (retry it from the
    write queue's admin)."""

    from integrations.models import APIWriteQueue as model

    fk_name = "appointment"
    extra = 0
    max_num = 0
    can_delete = False
    fields = ("connection", "operation", "status", "attempts", "next_attempt_at", "sent_at", "last_error")
    readonly_fields = fields
    verbose_name = "write to an external calendar"
    verbose_name_plural = "writes to external calendars"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Appointment)
class AppointmentAdmin(admin.ModelAdmin):
    form = AppointmentForm
    inlines = [WriteJobInline]
    list_display = (
        "id",
        "when_local",
        "therapist",
        "status",
        "source_system",
        "type",
        "office",
        "open_conflicts",
    )
    list_filter = ("status", "source_system", "therapist", "office", "type", ConflictFilter, "start")
    search_fields = ("external_id", "patient_ref", "uid")
    date_hierarchy = "start"
    list_select_related = ("therapist", "office")
    list_per_page = 50
    actions = ["confirm", "complete", "mark_no_show", "cancel", "uncancel"]
    readonly_fields = (
        "when_local",
        "ical_export",
        "status",
        "source_system",
        "external_id",
        "connection",
        "version",
        "override_reason",
        "created_by",
        "created",
        "updated",
        "uid",
    )

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return self.inlines if obj is not None else []  # a new booking has no writes yet

    def get_queryset(self, request: HttpRequest) -> QuerySet[Appointment]:
        open_conflicts = Count("conflicts", filter=Q(conflicts__status="open"), distinct=True)
        return selectors.appointment_list_visible(viewer=request.user).annotate(
            n_open_conflicts=open_conflicts
        )

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form_class = super().get_form(request, obj, change=change, **kwargs)

        class RequestForm(form_class):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, **kw: Any) -> None:
                super().__init__(*args, request=request, **kw)

        return RequestForm

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        main = [
            "therapist",
            "service",
            "type",
            "office",
            "patient_ref",
            "date",
            "start_time",
            "duration_minutes",
            "override_reason",
        ]
        if obj is None:
            return [(None, {"fields": main})]
        if not self.has_change_permission(request, obj):
            # View only (an external fact, or a finished appointment): the time-entry fields are form-only
            # and would render empty; the record's time is `when_local`.
            main = ["therapist", "service", "type", "office", "patient_ref"]
        return [
            (None, {"fields": ["when_local", "ical_export", *main]}),
            (
                "Record",
                {
                    "fields": [
                        "status",
                        "source_system",
                        "external_id",
                        "connection",
                        "version",
                        "uid",
                        "override_reason",
                        "created_by",
                        "created",
                        "updated",
                    ],
                    "classes": ["collapse"],
                },
            ),
        ]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and (
            obj.source_system != SourceSystem.HUB or obj.status not in OCCUPYING_STATUSES
        ):
            return False  # external facts, and finished appointments, are not edited here
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # appointments are cancelled, never deleted

    def save_model(self, request: HttpRequest, obj: Appointment, form: Any, change: bool) -> None:
        pass  # the form's clean() already wrote through the service

    @admin.display(description="When (therapist's time)", ordering="start")
    def when_local(self, obj: Appointment) -> str:
        return format_local_range(obj.start, obj.end, obj.timezone)

    @admin.display(description="Calendar file")
    def ical_export(self, obj: Appointment) -> str:
        url = reverse("api:appointment-ical", kwargs={"pk": obj.pk})
        # The patient version is checked (Admin and Front desk only) and audited by the API itself.
        return format_html(
            '<a class="button" href="{}">Download .ics</a> '
            '<a href="{}?audience=patient">.ics with the visit\'s details, for the patient</a>',
            url,
            url,
        )

    @admin.display(description="Conflicts")
    def open_conflicts(self, obj: Appointment) -> str:
        n = obj.n_open_conflicts  # type: ignore[attr-defined]
        return f"⚠ {n} open" if n else ""

    def _status(self, request: HttpRequest, qs: QuerySet[Appointment], status: str, done: str) -> None:
        run_service_action(
            self,
            request,
            qs,
            lambda a: services.appointment_set_status(actor=request.user, appointment=a, status=status),
            done,
        )

    @admin.action(description="Confirm selected appointments", permissions=["change"])
    def confirm(self, request: HttpRequest, qs: QuerySet[Appointment]) -> None:
        self._status(request, qs, AppointmentStatus.CONFIRMED, "confirmed")

    @admin.action(description="Mark selected as completed", permissions=["change"])
    def complete(self, request: HttpRequest, qs: QuerySet[Appointment]) -> None:
        self._status(request, qs, AppointmentStatus.COMPLETED, "marked completed")

    @admin.action(description="Mark selected as no-show", permissions=["change"])
    def mark_no_show(self, request: HttpRequest, qs: QuerySet[Appointment]) -> None:
        self._status(request, qs, AppointmentStatus.NO_SHOW, "marked no-show")

    @admin.action(description="Cancel selected appointments", permissions=["change"])
    def cancel(self, request: HttpRequest, qs: QuerySet[Appointment]) -> None:
        run_service_action(
            self,
            request,
            qs,
            lambda a: services.appointment_cancel(actor=request.user, appointment=a),
            "cancelled",
        )

    @admin.action(description="Restore (un-cancel) selected appointments", permissions=["change"])
    def uncancel(self, request: HttpRequest, qs: QuerySet[Appointment]) -> None:
        def restore(a: Appointment) -> None:
            if a.status != AppointmentStatus.CANCELLED:
                raise InvalidInput("Only a cancelled appointment can be restored.")
            services.appointment_set_status(
                actor=request.user, appointment=a, status=AppointmentStatus.SCHEDULED
            )

        run_service_action(self, request, qs, restore, "restored")


# --- patients (PHI) ---------------------------------------------------------------------------------


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    """The list shows pseudonyms only; opening a record is a PHI read and is audited."""

    list_display = ("ref", "created")
    search_fields = ("ref",)
    fields = ("ref", "name", "date_of_birth", "email", "phone")
    readonly_fields = ("ref",)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return selectors.patient_can_read(user=request.user) and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return selectors.patient_can_read(user=request.user) and super().has_view_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is not None and request.method == "GET":
            selectors.patient_get_for_viewer(viewer=request.user, ref=obj.ref)  # audits the read
        return obj

    def save_model(self, request: HttpRequest, obj: Patient, form: Any, change: bool) -> None:
        if change:
            obj.save()
            from audit.services import audit_record

            audit_record(
                actor=request.user,
                action="scheduler.patient.changed",
                target=obj,
                details={"fields": sorted(form.changed_data)},
            )
            return
        created = services.patient_create(
            actor=request.user,
            name=obj.name,
            date_of_birth=obj.date_of_birth,
            email=obj.email,
            phone=obj.phone,
        )
        obj.pk, obj.ref = created.pk, created.ref


# --- reference data ---------------------------------------------------------------------------------


@admin.register(Office)
class OfficeAdmin(AuditedModelAdmin):
    list_display = ("name", "timezone")
    search_fields = ("name",)


@admin.register(Service)
class ServiceAdmin(AuditedModelAdmin):
    list_display = ("name", "durations", "buffer_before_minutes", "buffer_after_minutes", "price", "active")
    list_filter = ("active",)


@admin.register(TimeOff)
class TimeOffAdmin(admin.ModelAdmin):
    list_display = ("therapist", "start", "end", "reason")
    list_filter = ("therapist",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: TimeOff, form: Any, change: bool) -> None:
        created = services.time_off_add(
            actor=request.user, therapist=obj.therapist, start=obj.start, end=obj.end, reason=obj.reason
        )
        obj.pk = created.pk


@admin.register(BusyBlock)
class BusyBlockAdmin(admin.ModelAdmin):
    list_display = ("therapist", "start", "end", "source_system", "connection")
    list_filter = ("source_system", "therapist")
    date_hierarchy = "start"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # busy blocks come from connected calendars

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
