"""Writes for scheduling. Each top-level service owns its transaction and audits itself inside it.

The double-booking guard: every path that makes an appointment newly occupy time (book, reschedule,
un-cancel) locks the therapist row, checks for clashes with the same interval rule as the conflict engine,
then writes. The lock serialises concurrent bookings of one therapist (on SQLite the IMMEDIATE transaction
already serialises all writers).
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from guardian.shortcuts import assign_perm, remove_perm

from accounts.roles import THERAPIST, is_admin
from audit.services import audit_record
from conflicts.engine import Slot, WorkingHoursError, find_overlaps, format_working_hours, parse_working_hours
from lib.errors import BookingConflict, Forbidden, InvalidInput, StaleVersion
from lib.timeutil import require_interval

from .models import (
    BUFFER_PAD,
    MAX_APPOINTMENT_LENGTH,
    OCCUPYING_STATUSES,
    Appointment,
    AppointmentStatus,
    AppointmentType,
    CalendarFeedToken,
    Office,
    Patient,
    Service,
    SourceSystem,
    Therapist,
    TimeOff,
    validate_timezone,
)

# Status changes staff may make through appointment_set_status (cancel has its own service).
STATUS_TRANSITIONS: dict[str, set[str]] = {
    AppointmentStatus.SCHEDULED: {
        AppointmentStatus.CONFIRMED,
        AppointmentStatus.COMPLETED,
        AppointmentStatus.NO_SHOW,
    },
    AppointmentStatus.CONFIRMED: {
        AppointmentStatus.SCHEDULED,
        AppointmentStatus.COMPLETED,
        AppointmentStatus.NO_SHOW,
    },
    AppointmentStatus.CANCELLED: {AppointmentStatus.SCHEDULED, AppointmentStatus.CONFIRMED},  # un-cancel
    AppointmentStatus.COMPLETED: {AppointmentStatus.NO_SHOW},  # corrections
    AppointmentStatus.NO_SHOW: {AppointmentStatus.COMPLETED},
}
THERAPIST_OBJECT_PERMS = ("scheduler.view_therapist", "scheduler.view_therapist_calendar")


# --- therapists ---------------------------------------------------------------------------------------


def _validated_hours(working_hours: Any) -> dict[str, list[str]]:
    if not isinstance(working_hours, dict):
        raise InvalidInput('Working hours must be an object like {"monday": ["09:00-17:00"]}.')
    try:
        return format_working_hours(parse_working_hours(working_hours))
    except WorkingHoursError as exc:
        raise InvalidInput(f"Invalid working hours: {exc}") from exc


def _validated_zone(tz: str) -> str:
    try:
        validate_timezone(tz)
    except ValidationError as exc:
        raise InvalidInput(exc.messages[0]) from exc
    return tz


def therapist_create(
    *,
    actor: Any | None,
    name: str,
    email: str,
    timezone: str,
    working_hours: dict[str, list[str]] | None = None,
    offices: list[Office] | None = None,
    user: Any | None = None,
) -> Therapist:
    with transaction.atomic():
        therapist = Therapist(
            name=name,
            email=email,
            timezone=_validated_zone(timezone),
            working_hours=_validated_hours(working_hours or {}),
        )
        try:
            therapist.full_clean(exclude=["user"])
        except ValidationError as exc:
            raise InvalidInput("; ".join(exc.messages)) from exc
        therapist.save()
        if offices:
            therapist.offices.set(offices)
        audit_record(
            actor=actor,
            action="scheduler.therapist.created",
            target=therapist,
            details={"timezone": timezone},
        )
        if user is not None:
            therapist_link_user(actor=actor, therapist=therapist, user=user)
    return therapist


def therapist_set_working_hours(*, actor: Any | None, therapist: Therapist, working_hours: Any) -> Therapist:
    """Validate and store weekly hours; outside-hours conflicts are re-evaluated by a worker afterwards."""
    hours = _validated_hours(working_hours)
    with transaction.atomic():
        before = therapist.working_hours
        therapist.working_hours = hours
        therapist.save(update_fields=["working_hours", "updated"])
        audit_record(
            actor=actor,
            action="scheduler.therapist.working_hours_changed",
            target=therapist,
            details={"before": before, "after": hours},
        )
        from conflicts.tasks import conflicts_detect_for_therapist_task

        therapist_id = therapist.pk
        transaction.on_commit(lambda: conflicts_detect_for_therapist_task.delay(therapist_id))
    return therapist


def therapist_link_user(*, actor: Any | None, therapist: Therapist, user: Any | None) -> Therapist:
    """Link (or unlink, with user=None) the therapist's login, moving the object permissions with it."""
    with transaction.atomic():
        previous = therapist.user
        if previous is not None and previous != user:
            for perm in THERAPIST_OBJECT_PERMS:
                remove_perm(perm, previous, therapist)
            previous.groups.remove(Group.objects.get(name=THERAPIST))
        therapist.user = user
        therapist.save(update_fields=["user", "updated"])
        if user is not None:
            user.groups.add(Group.objects.get(name=THERAPIST))
            for perm in THERAPIST_OBJECT_PERMS:
                assign_perm(perm, user, therapist)
        audit_record(
            actor=actor,
            action="scheduler.therapist.user_linked",
            target=therapist,
            details={
                "user_id": user.pk if user else None,
                "previous_user_id": previous.pk if previous else None,
            },
        )
    return therapist


def time_off_add(
    *, actor: Any | None, therapist: Therapist, start: datetime, end: datetime, reason: str = ""
) -> TimeOff:
    start, end = require_interval(start, end)
    with transaction.atomic():
        period = TimeOff.objects.create(therapist=therapist, start=start, end=end, reason=reason)
        audit_record(
            actor=actor,
            action="scheduler.time_off.created",
            target=period,
            details={"therapist_id": therapist.pk, "start": start.isoformat(), "end": end.isoformat()},
        )
        from conflicts.services import conflicts_detect

        conflicts_detect(therapist_ids=[therapist.pk], start=start, end=end)
    return period


# --- patients (PHI) -----------------------------------------------------------------------------------


def patient_create(
    *, actor: Any | None, name: str, date_of_birth: str = "", email: str = "", phone: str = ""
) -> Patient:
    if not name.strip():
        raise InvalidInput("A patient needs a name.")
    if date_of_birth:
        try:
            datetime.strptime(date_of_birth, "%Y-%m-%d")
        except ValueError as exc:  # the message never echoes the value: PHI
            raise InvalidInput("date_of_birth must be a real date written YYYY-MM-DD.") from exc
    with transaction.atomic():
        patient = Patient.objects.create(
            ref=f"pt_{secrets.token_hex(8)}",
            name=name.strip(),
            date_of_birth=date_of_birth,
            email=email.strip(),
            phone=phone.strip(),
        )
        # Field names only: the audit log must not become a second copy of the PHI.
        audit_record(
            actor=actor,
            action="scheduler.patient.created",
            target=patient,
            details={
                "fields": [f for f in ("name", "date_of_birth", "email", "phone") if getattr(patient, f)]
            },
        )
    return patient


# --- appointments -------------------------------------------------------------------------------------


def _buffers(service: Service | None) -> tuple[timedelta, timedelta]:
    if service is None:
        return timedelta(0), timedelta(0)
    return timedelta(minutes=service.buffer_before_minutes), timedelta(minutes=service.buffer_after_minutes)


def _clashing_ids(
    *, therapist_id: int, start: datetime, end: datetime, service: Service | None, exclude_pk: int | None
) -> list[int]:
    """Ids of occupying appointments of the therapist that clash with [start, end) (buffers included)."""
    before, after = _buffers(service)
    # Times and buffers only: model instances would decrypt each candidate's raw payload for nothing.
    candidates = (
        Appointment.objects.filter(
            therapist_id=therapist_id,
            status__in=OCCUPYING_STATUSES,
            start__lt=end + after + BUFFER_PAD,
            end__gt=start - before - BUFFER_PAD,
            start__gt=start - before - BUFFER_PAD - MAX_APPOINTMENT_LENGTH,  # bounds the index range scan
        )
        .exclude(pk=exclude_pk)
        .values_list("pk", "start", "end", "service__buffer_before_minutes", "service__buffer_after_minutes")
    )
    slots = [
        Slot(id=-1, therapist_id=therapist_id, start=start, end=end, buffer_before=before, buffer_after=after)
    ]
    slots += [
        Slot(
            id=pk,
            therapist_id=therapist_id,
            start=s,
            end=e,
            buffer_before=timedelta(minutes=b or 0),
            buffer_after=timedelta(minutes=f or 0),
        )
        for pk, s, e, b, f in candidates
    ]
    return sorted(
        i for f in find_overlaps(slots) if -1 in f.appointment_ids for i in f.appointment_ids if i != -1
    )


def _guard(*, actor: Any | None, appointment: Appointment, override_reason: str) -> bool:
    """Refuse a clash for hub bookings unless an Admin overrides with a reason; True when overridden."""
    clashes = _clashing_ids(
        therapist_id=appointment.therapist_id,
        start=appointment.start,
        end=appointment.end,
        service=appointment.service,
        exclude_pk=appointment.pk,
    )
    if not clashes or appointment.source_system != SourceSystem.HUB:
        return False  # external facts are stored; detection opens a Conflict for staff
    if override_reason.strip():
        if not is_admin(actor):
            raise Forbidden("Only an Admin may book over an existing appointment.")
        return True
    raise BookingConflict(
        f"The therapist already has appointment(s) {', '.join(map(str, clashes))} at that time.",
        details={"conflicting_appointment_ids": clashes},
    )


def _refuse_database_double_booking(func: Callable[..., Appointment]) -> Callable[..., Appointment]:
    """Map PostgreSQL's exclusion violation (SQLSTATE 23P01) to the same BookingConflict as the guard.

    With the therapist lock the guard refuses first; the constraint is the backstop for any path that
    would skip it. The service's transaction has rolled back here, so the clash can be looked up.
    """

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> Appointment:
        try:
            return func(**kwargs)
        except IntegrityError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != "23P01":
                raise
            appointment = kwargs.get("appointment")
            therapist_id = kwargs["therapist"].pk if "therapist" in kwargs else appointment.therapist_id
            start = kwargs.get("start") or appointment.start
            end = kwargs.get("end") or start + (appointment.end - appointment.start)  # book always has end
            clashes = _clashing_ids(
                therapist_id=therapist_id,
                start=start,
                end=end,
                service=None,
                exclude_pk=appointment.pk if appointment else None,
            )
            raise BookingConflict(
                "The therapist already has an appointment at that time.",
                details={"conflicting_appointment_ids": clashes},
            ) from exc

    return wrapper


def _lock_therapist(therapist_id: int) -> Therapist:
    return Therapist.objects.select_for_update().get(pk=therapist_id)


def _detect(appointment: Appointment, *extra: tuple[datetime, datetime]) -> None:
    from conflicts.services import conflicts_detect

    start = min([appointment.start, *(s for s, _ in extra)])
    end = max([appointment.end, *(e for _, e in extra)])
    conflicts_detect(therapist_ids=[appointment.therapist_id], start=start, end=end)


def _enqueue(appointment: Appointment, operation: str) -> None:
    from integrations.services import write_queue_enqueue

    write_queue_enqueue(appointment=appointment, operation=operation)


def _check_version(appointment: Appointment, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != appointment.version:
        raise StaleVersion(
            f"Appointment {appointment.pk} changed since you loaded it (version {appointment.version}, "
            f"you had {expected_version}).",
            details={"current_version": appointment.version},
        )


def _reload_locked(appointment: Appointment) -> Appointment:
    _lock_therapist(appointment.therapist_id)
    return Appointment.objects.select_related("service").get(pk=appointment.pk)


@_refuse_database_double_booking
def appointment_book(
    *,
    actor: Any | None,
    therapist: Therapist,
    start: datetime,
    end: datetime,
    service: Service | None = None,
    type: str = AppointmentType.CONSULT,
    office: Office | None = None,
    patient_ref: str = "",
    status: str = AppointmentStatus.SCHEDULED,
    override_reason: str = "",
) -> Appointment:
    """Book a hub appointment; a clash is refused (BookingConflict, naming the clashing ids)."""
    start, end = require_interval(start, end, max_length=MAX_APPOINTMENT_LENGTH)
    if not therapist.active:
        raise InvalidInput(f"{therapist} is not active.")
    if status not in OCCUPYING_STATUSES:
        raise InvalidInput("A new booking is either scheduled or confirmed.")
    if type not in AppointmentType.values:
        raise InvalidInput(f"Unknown appointment type {type!r}.")
    if service is not None and int((end - start).total_seconds() // 60) not in service.durations:
        raise InvalidInput(
            f"{service} lasts {', '.join(map(str, service.durations))} minutes, "
            f"not {int((end - start).total_seconds() // 60)}."
        )
    if patient_ref and not Patient.objects.filter(ref=patient_ref).exists():
        raise InvalidInput(f"No patient with reference {patient_ref!r}.")
    with transaction.atomic():
        _lock_therapist(therapist.pk)
        appointment = Appointment(
            therapist=therapist,
            start=start,
            end=end,
            service=service,
            type=type,
            office=office,
            patient_ref=patient_ref,
            status=status,
            timezone=therapist.timezone,
            source_system=SourceSystem.HUB,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        overridden = _guard(actor=actor, appointment=appointment, override_reason=override_reason)
        if overridden:
            appointment.override_reason = override_reason.strip()
        appointment.save()
        audit_record(
            actor=actor,
            action="scheduler.appointment.booked",
            target=appointment,
            details={
                "therapist_id": therapist.pk,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "status": status,
                "override": overridden,
            },
        )
        _enqueue(appointment, "create")
        _detect(appointment)
    return appointment


@_refuse_database_double_booking
def appointment_reschedule(
    *,
    actor: Any | None,
    appointment: Appointment,
    start: datetime,
    end: datetime | None = None,
    expected_version: int | None = None,
    override_reason: str = "",
) -> Appointment:
    """Move a hub appointment (end defaults to keeping its length)."""
    if end is None:
        end = start + (appointment.end - appointment.start)
    start, end = require_interval(start, end, max_length=MAX_APPOINTMENT_LENGTH)
    with transaction.atomic():
        appointment = _reload_locked(appointment)
        _check_version(appointment, expected_version)
        if appointment.source_system != SourceSystem.HUB:
            raise InvalidInput(
                f"This appointment is managed in {appointment.get_source_system_display()}; "
                "reschedule it there."
            )
        if appointment.status not in OCCUPYING_STATUSES:
            raise InvalidInput(
                f"A {appointment.get_status_display().lower()} appointment cannot be rescheduled."
            )
        old = (appointment.start, appointment.end)
        appointment.start, appointment.end = start, end
        overridden = _guard(actor=actor, appointment=appointment, override_reason=override_reason)
        if overridden:
            appointment.override_reason = override_reason.strip()
        appointment.version += 1
        appointment.save()
        audit_record(
            actor=actor,
            action="scheduler.appointment.rescheduled",
            target=appointment,
            details={
                "from": [old[0].isoformat(), old[1].isoformat()],
                "to": [start.isoformat(), end.isoformat()],
                "override": overridden,
            },
        )
        _enqueue(appointment, "update")
        _detect(appointment, old)
    return appointment


def appointment_cancel(
    *, actor: Any | None, appointment: Appointment, reason: str = "", expected_version: int | None = None
) -> Appointment:
    with transaction.atomic():
        appointment = _reload_locked(appointment)
        _check_version(appointment, expected_version)
        if appointment.source_system != SourceSystem.HUB:
            raise InvalidInput(
                f"This appointment is managed in {appointment.get_source_system_display()}; cancel it there."
            )
        if appointment.status not in OCCUPYING_STATUSES:
            raise InvalidInput(
                f"A {appointment.get_status_display().lower()} appointment cannot be cancelled."
            )
        appointment.status = AppointmentStatus.CANCELLED
        appointment.version += 1
        appointment.save(update_fields=["status", "version", "updated"])
        audit_record(
            actor=actor,
            action="scheduler.appointment.cancelled",
            target=appointment,
            details={"has_reason": bool(reason.strip())},
        )
        _enqueue(appointment, "delete")
        _detect(appointment)
    return appointment


@_refuse_database_double_booking
def appointment_set_status(
    *,
    actor: Any | None,
    appointment: Appointment,
    status: str,
    expected_version: int | None = None,
    override_reason: str = "",
) -> Appointment:
    """Confirm, complete, mark no-show, or un-cancel (which passes the double-booking guard again)."""
    with transaction.atomic():
        appointment = _reload_locked(appointment)
        _check_version(appointment, expected_version)
        current = appointment.status
        if status not in STATUS_TRANSITIONS.get(current, set()):
            allowed = ", ".join(sorted(STATUS_TRANSITIONS.get(current, set()))) or "none"
            raise InvalidInput(f"Cannot change a {current} appointment to '{status}' (allowed: {allowed}).")
        appointment.status = status
        overridden = False
        if status in OCCUPYING_STATUSES and current not in OCCUPYING_STATUSES:
            overridden = _guard(actor=actor, appointment=appointment, override_reason=override_reason)
        appointment.version += 1
        appointment.save(update_fields=["status", "version", "updated"])
        audit_record(
            actor=actor,
            action="scheduler.appointment.status_changed",
            target=appointment,
            details={"from": current, "to": status, "override": overridden},
        )
        if appointment.source_system == SourceSystem.HUB:
            _enqueue(appointment, "update")
        _detect(appointment)
    return appointment


def appointment_merge(*, actor: Any | None, keep: Appointment, duplicate: Appointment) -> Appointment:
    """Mark `duplicate` as the same visit as `keep`: it stays linked to its source but stops occupying."""
    if keep.pk == duplicate.pk:
        raise InvalidInput("An appointment cannot be merged into itself.")
    if keep.therapist_id != duplicate.therapist_id:
        raise InvalidInput("Only appointments of the same therapist can be the same visit.")
    with transaction.atomic():
        _lock_therapist(keep.therapist_id)
        keep = Appointment.objects.get(pk=keep.pk)
        duplicate = Appointment.objects.get(pk=duplicate.pk)
        if keep.merged_into_id is not None:
            raise InvalidInput(f"Appointment {keep.pk} was itself merged into {keep.merged_into_id}.")
        previous = duplicate.status
        duplicate.merged_into = keep
        duplicate.status = AppointmentStatus.CANCELLED
        duplicate.version += 1
        duplicate.save(update_fields=["merged_into", "status", "version", "updated"])
        audit_record(
            actor=actor,
            action="scheduler.appointment.merged",
            target=duplicate,
            details={"into": keep.pk, "previous_status": previous, "source": duplicate.source_system},
        )
        if duplicate.source_system == SourceSystem.HUB:
            _enqueue(duplicate, "delete")
        _detect(keep, (duplicate.start, duplicate.end))
    return duplicate


def appointment_update_details(
    *,
    actor: Any | None,
    appointment: Appointment,
    expected_version: int | None = None,
    **changes: Any,
) -> Appointment:
    """Change a hub appointment's office, type or patient (time changes go through reschedule)."""
    allowed = {"office", "type", "patient_ref"}
    unknown = set(changes) - allowed
    if unknown:
        raise InvalidInput(f"Cannot change {', '.join(sorted(unknown))} here.")
    if "type" in changes and changes["type"] not in AppointmentType.values:
        raise InvalidInput(f"Unknown appointment type {changes['type']!r}.")
    ref = changes.get("patient_ref")
    if ref and not Patient.objects.filter(ref=ref).exists():
        raise InvalidInput(f"No patient with reference {ref!r}.")
    with transaction.atomic():
        appointment = _reload_locked(appointment)
        _check_version(appointment, expected_version)
        if appointment.source_system != SourceSystem.HUB:
            raise InvalidInput(
                f"This appointment is managed in {appointment.get_source_system_display()}; change it there."
            )
        changed = sorted(k for k, v in changes.items() if getattr(appointment, k) != v)
        if not changed:
            return appointment
        for key in changed:
            setattr(appointment, key, changes[key])
        appointment.version += 1
        appointment.save(update_fields=[*changed, "version", "updated"])
        audit_record(
            actor=actor,
            action="scheduler.appointment.updated",
            target=appointment,
            details={"fields": changed},
        )
        _detect(appointment)  # a new patient can clash with that patient's other bookings
    return appointment


# --- calendar feeds ------------------------------------------------------------------------------------


def _may_manage_feed(actor: Any | None, therapist: Therapist) -> bool:
    """Staff for anyone; a therapist for their own calendar."""
    if actor is None:
        return True  # the system itself (commands, the demo)
    if not getattr(actor, "is_active", False):
        return False
    return actor.has_perm("scheduler.change_therapist") or therapist.user_id == actor.pk


def calendar_feed_token_create(*, actor: Any | None, therapist: Therapist) -> tuple[CalendarFeedToken, str]:
    """A new secret feed URL token for the therapist; any previous one is revoked (rotation).

    Returns the row and the token itself, which is stored only as a hash: show it once.
    """
    from django.utils import timezone

    if not _may_manage_feed(actor, therapist):
        raise Forbidden("You may not manage this therapist's calendar feed.")
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        revoked = list(
            CalendarFeedToken.objects.filter(therapist=therapist, revoked_at__isnull=True).values_list(
                "pk", flat=True
            )
        )
        CalendarFeedToken.objects.filter(pk__in=revoked).update(revoked_at=timezone.now())
        feed = CalendarFeedToken.objects.create(
            therapist=therapist,
            token_hash=CalendarFeedToken.hash_token(token),
            prefix=token[:6],
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        audit_record(
            actor=actor,
            action="scheduler.calendar_feed.created",
            target=therapist,
            details={"feed_token_id": feed.pk, "prefix": feed.prefix, "revoked_token_ids": revoked},
        )
    return feed, token


def calendar_feed_token_revoke(*, actor: Any | None, therapist: Therapist) -> int:
    """Revoke the therapist's feed URLs (they answer 404 from now on); returns how many were active."""
    from django.utils import timezone

    if not _may_manage_feed(actor, therapist):
        raise Forbidden("You may not manage this therapist's calendar feed.")
    with transaction.atomic():
        revoked = list(
            CalendarFeedToken.objects.filter(therapist=therapist, revoked_at__isnull=True).values_list(
                "pk", flat=True
            )
        )
        CalendarFeedToken.objects.filter(pk__in=revoked).update(revoked_at=timezone.now())
        audit_record(
            actor=actor,
            action="scheduler.calendar_feed.revoked",
            target=therapist,
            details={"revoked_token_ids": revoked},
        )
    return len(revoked)
