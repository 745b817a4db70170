"""Reads for scheduling, filtered by what the viewer may see (deny by default)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_user

from accounts.roles import FRONT_DESK, user_has_role
from audit.services import audit_record
from lib.errors import Forbidden, NotFound
from lib.timeutil import require_interval

from .models import Appointment, Patient, Therapist

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
    start: datetime,
    end: datetime,
    therapist_ids: list[int] | None = None,
    office_ids: list[int] | None = None,
    source_systems: list[str] | None = None,
    statuses: list[str] | None = None,
) -> QuerySet[Appointment]:
    """Appointments intersecting [start, end) that the viewer may see (interval test, not start-in-range)."""
    start, end = require_interval(start, end)
    qs = appointment_list_visible(viewer=viewer).filter(start__lt=end, end__gt=start)
    if therapist_ids:
        qs = qs.filter(therapist_id__in=therapist_ids)
    if office_ids:
        qs = qs.filter(office_id__in=office_ids)
    if source_systems:
        qs = qs.filter(source_system__in=source_systems)
    if statuses:
        qs = qs.filter(status__in=statuses)
    return qs.select_related("therapist", "service", "office").order_by("start", "pk")


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
