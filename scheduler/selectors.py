"""Reads for scheduling, filtered by what the viewer may see (deny by default)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_user

from accounts.roles import FRONT_DESK, user_has_role
from audit.services import audit_record
from lib.errors import Forbidden, InvalidInput, NotFound
from lib.timeutil import require_interval

from .models import (
    MAX_APPOINTMENT_LENGTH,
    OCCUPYING_STATUSES,
    Appointment,
    BusyBlock,
    CalendarFeedToken,
    Office,
    Patient,
    Service,
    Therapist,
    TimeOff,
)

VIEW_CALENDAR = "scheduler.view_therapist_calendar"
CHANGE_CALENDAR = "scheduler.change_therapist_calendar"


def therapist_list_visible(*, viewer: Any) -> QuerySet[Therapist]:
    """Therapists whose calendar the viewer may see: all (role-wide permission) or those granted."""
    if not getattr(viewer, "is_authenticated", False) or not viewer.is_active:
        return Therapist.objects.none()
    return get_objects_for_user(viewer, VIEW_CALENDAR, klass=Therapist, accept_global_perms=True)


def appointment_list_visible(*, viewer: Any) -> QuerySet[Appointment]:
    if getattr(viewer, "is_active", False) and viewer.has_perm(VIEW_CALENDAR):
        return Appointment.objects.all()  # role-wide: skip the per-therapist subquery
    return Appointment.objects.filter(therapist__in=therapist_list_visible(viewer=viewer))


def appointment_get_for_viewer(*, viewer: Any, pk: int) -> Appointment:
    """The appointment, or NotFound also when it exists but is not the viewer's to see (no existence leak)."""
    appointment = appointment_list_visible(viewer=viewer).filter(pk=pk).first()
    if appointment is None:
        raise NotFound(f"Appointment {pk} not found.")
    return appointment


def appointment_can_change(*, user: Any, appointment: Appointment) -> bool:
    if not getattr(user, "is_active", False):
        return False
    return user.has_perm("scheduler.change_appointment") or user.has_perm(
        CHANGE_CALENDAR, appointment.therapist
    )


def appointment_list_for_calendar(
    *,
    viewer: Any,
    start: datetime | None = None,
    end: datetime | None = None,
    therapist_ids: list[int] | None = None,
    office_ids: list[int] | None = None,
    source_systems: list[str] | None = None,
    statuses: list[str] | None = None,
) -> QuerySet[Appointment]:
    """Appointments the viewer may see, filtered; a range is an interval intersection, not start-in-range."""
    if start is not None and end is not None:
        start, end = require_interval(start, end)
    qs = appointment_list_visible(viewer=viewer)
    if start is not None:
        qs = qs.filter(end__gt=start)
    if end is not None:
        qs = qs.filter(start__lt=end)
    if therapist_ids:
        qs = qs.filter(therapist_id__in=therapist_ids)
    if office_ids:
        qs = qs.filter(office_id__in=office_ids)
    if source_systems:
        qs = qs.filter(source_system__in=source_systems)
    if statuses:
        qs = qs.filter(status__in=statuses)
    return qs.select_related("therapist", "service", "office").order_by("start", "pk")


def service_list_active() -> QuerySet[Service]:
    """Services offered now (any signed-in user may see names and durations; no PHI)."""
    return Service.objects.filter(active=True).order_by("name", "pk")


def office_list() -> QuerySet[Office]:
    return Office.objects.order_by("name", "pk")


def patient_can_read(*, user: Any) -> bool:
    return getattr(user, "is_active", False) and (
        user.is_superuser or user_has_role(user, "Admin") or user_has_role(user, FRONT_DESK)
    )


def patient_get_for_viewer(*, viewer: Any, ref: str) -> Patient:
    """Read a patient's PHI; only Admin and Front desk may, and every read is audited."""
    if not patient_can_read(user=viewer):
        raise Forbidden("Only Admin and Front desk may read patient records.")
    with transaction.atomic():
        patient = Patient.objects.filter(ref=ref).first()
        if patient is None:
            raise NotFound(f"Patient {ref} not found.")
        audit_record(actor=viewer, action="scheduler.patient.viewed", target=patient)
    return patient


MAX_CALENDAR_RANGE_DAYS = 62


def calendar_for_range(
    *,
    viewer: Any,
    start: datetime,
    end: datetime,
    therapist_ids: list[int] | None = None,
    office_ids: list[int] | None = None,
    source_systems: list[str] | None = None,
    statuses: list[str] | None = None,
) -> dict[str, Any]:
    """Appointments, busy blocks and open-conflict markers for a range, as plain data (week view).

    Built from tuples, not model instances or serializers: a week of 50 therapists is ~1,500 rows.
    """
    from conflicts.models import Conflict

    start, end = require_interval(start, end)
    if (end - start).days > MAX_CALENDAR_RANGE_DAYS:
        raise InvalidInput(f"The calendar range is at most {MAX_CALENDAR_RANGE_DAYS} days.")
    therapists = therapist_list_visible(viewer=viewer)
    if therapist_ids:
        therapists = therapists.filter(pk__in=therapist_ids)
    if office_ids:
        therapists = therapists.filter(offices__in=office_ids).distinct()
    zones = dict(therapists.values_list("pk", "timezone"))
    appts = appointment_list_visible(viewer=viewer).filter(
        therapist_id__in=list(zones),
        start__lt=end,
        end__gt=start,
        start__gt=start - MAX_APPOINTMENT_LENGTH,  # bounds the (therapist, start) index scan
    )
    if office_ids:
        appts = appts.filter(office_id__in=office_ids)
    if source_systems:
        appts = appts.filter(source_system__in=source_systems)
    if statuses:
        appts = appts.filter(status__in=statuses)
    fields = (
        "pk",
        "therapist_id",
        "start",
        "end",
        "status",
        "source_system",
        "type",
        "office_id",
        "service_id",
        "version",
    )
    appointments = [
        {
            "id": pk,
            "therapist": t,
            "start": s.isoformat(),
            "end": e.isoformat(),
            "status": st,
            "source_system": src,
            "type": ty,
            "office": o,
            "service": sv,
            "version": v,
        }
        for pk, t, s, e, st, src, ty, o, sv, v in appts.order_by("start", "pk").values_list(*fields)
    ]
    blocks = [
        {"id": pk, "therapist": t, "start": s.isoformat(), "end": e.isoformat(), "source_system": src}
        for pk, t, s, e, src in BusyBlock.objects.filter(
            therapist_id__in=list(zones), start__lt=end, end__gt=start
        )
        .order_by("start")
        .values_list("pk", "therapist_id", "start", "end", "source_system")
    ]
    shown = {a["id"] for a in appointments}
    # Two small indexed queries instead of one three-way join: open conflicts of these therapists near the
    # range (therapist, start index; padded because a conflict's extent lies inside its appointments), then
    # their links; cross-therapist patient conflicts have no therapist.
    near = Conflict.objects.filter(
        status=Conflict.Status.OPEN,
        start__lt=end + MAX_APPOINTMENT_LENGTH,
        end__gt=start - MAX_APPOINTMENT_LENGTH,
    ).order_by()
    # Two queries rather than one OR, which would keep the planner off the (therapist, start) index.
    kinds = dict(near.filter(therapist_id__in=list(zones)).values_list("pk", "kind"))
    kinds.update(near.filter(therapist__isnull=True).values_list("pk", "kind"))
    markers: dict[int, dict[str, Any]] = {}
    links = Conflict.appointments.through.objects.filter(conflict_id__in=list(kinds)).values_list(
        "conflict_id", "appointment_id"
    )
    for conflict_id, appointment_id in links:
        if appointment_id in shown:
            marker = markers.setdefault(
                conflict_id, {"id": conflict_id, "kind": kinds[conflict_id], "appointment_ids": []}
            )
            marker["appointment_ids"].append(appointment_id)
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "therapists": [{"id": pk, "timezone": tz} for pk, tz in sorted(zones.items())],
        "appointments": appointments,
        "busy_blocks": blocks,
        "conflicts": sorted(markers.values(), key=lambda m: m["id"]),
    }


def therapist_free_slots(
    *, therapist: Therapist, service: Service, duration: timedelta, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """Bookable slots of `duration` in [start, end), from local data only (no platform calls)."""
    from conflicts.engine import WorkingWeek, free_slots, parse_working_hours

    start, end = require_interval(start, end)
    if (end - start).days > MAX_CALENDAR_RANGE_DAYS:
        raise InvalidInput(f"The range is at most {MAX_CALENDAR_RANGE_DAYS} days.")
    if not therapist.working_hours:
        return []
    buffers = {s.pk: (s.buffer_before_minutes, s.buffer_after_minutes) for s in Service.objects.all()}
    pad = timedelta(minutes=max((b + a for b, a in buffers.values()), default=0)) + MAX_APPOINTMENT_LENGTH
    taken: list[tuple[datetime, datetime]] = []
    for s, e, svc in Appointment.objects.filter(
        therapist=therapist,
        status__in=OCCUPYING_STATUSES,
        start__lt=end + pad,
        end__gt=start - pad,
        start__gt=start - pad,
    ).values_list("start", "end", "service_id"):
        before, after = buffers.get(svc, (0, 0))
        taken.append((s - timedelta(minutes=before), e + timedelta(minutes=after)))
    taken += list(
        BusyBlock.objects.filter(therapist=therapist, start__lt=end + pad, end__gt=start - pad).values_list(
            "start", "end"
        )
    )
    time_off = tuple(
        TimeOff.objects.filter(therapist=therapist, start__lt=end, end__gt=start).values_list("start", "end")
    )
    week = WorkingWeek(
        tz=ZoneInfo(therapist.timezone), hours=parse_working_hours(therapist.working_hours), time_off=time_off
    )
    return free_slots(
        week=week,
        start=start,
        end=end,
        duration=duration,
        taken=taken,
        buffer_before=timedelta(minutes=service.buffer_before_minutes),
        buffer_after=timedelta(minutes=service.buffer_after_minutes),
    )


def calendar_feed_token_lookup(*, token: str) -> CalendarFeedToken | None:
    """The active feed token for a secret, or None (unknown, malformed and revoked look the same)."""
    if not token or len(token) > 128:
        return None
    return (
        CalendarFeedToken.objects.filter(
            token_hash=CalendarFeedToken.hash_token(token), revoked_at__isnull=True
        )
        .only("pk", "therapist_id")
        .first()
    )


def calendar_feed_token_active(*, therapist: Therapist) -> CalendarFeedToken | None:
    return CalendarFeedToken.objects.filter(therapist=therapist, revoked_at__isnull=True).first()


def appointment_get_for_patient_export(*, viewer: Any, pk: int) -> Appointment:
    """An appointment with what its patient may be sent (service, therapist, office): Admin and Front desk
    only, and audited, since it ties a visit's details to a person."""
    appointment = appointment_get_for_viewer(viewer=viewer, pk=pk)
    if not patient_can_read(user=viewer):
        raise Forbidden("Only Admin and Front desk may export an appointment for its patient.")
    with transaction.atomic():
        audit_record(actor=viewer, action="scheduler.appointment.exported_for_patient", target=appointment)
    return Appointment.objects.select_related("service", "therapist", "office").get(pk=appointment.pk)
