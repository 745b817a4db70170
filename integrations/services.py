"""Writes for integrations. For now: queueing hub changes for the external calendars that want them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from lib.errors import InvalidInput
from lib.timeutil import require_interval
from scheduler.models import (
    MAX_APPOINTMENT_LENGTH,
    Appointment,
    AppointmentStatus,
    AppointmentType,
    Therapist,
)

from .models import WRITABLE_PLATFORMS, APIWriteQueue, Connection


def appointment_projection(appointment: Appointment) -> dict[str, object]:
    """What an external calendar may learn of an appointment: time and state, no PHI."""
    return {
        "uid": str(appointment.uid),
        "start": appointment.start.isoformat(),
        "end": appointment.end.isoformat(),
        "timezone": appointment.timezone,
        "status": appointment.status,
        "version": appointment.version,
        "title": "Appointment",
    }


def write_queue_enqueue(*, appointment: Appointment, operation: str) -> list[APIWriteQueue]:
    """Queue one job per writable connection of the appointment's therapist.

    Called inside the service's transaction (an outbox): the job commits or rolls back with the change
    itself, so no change is lost between commit and enqueue, and none is sent for a rolled-back change.
    """
    connections = Connection.objects.filter(
        therapist_id=appointment.therapist_id, write_enabled=True, platform__in=WRITABLE_PLATFORMS
    )
    jobs = [
        APIWriteQueue(
            target_system=c.platform,
            connection=c,
            appointment=appointment,
            operation=operation,
            payload=appointment_projection(appointment),
            next_attempt_at=timezone.now(),
            idempotency_key=f"{appointment.uid}:{appointment.version}:{c.pk}:{operation}",
        )
        for c in connections
        # Only what originated in the hub, or on another platform, is written out; never echo a calendar
        # its own event.
        if c.pk != appointment.connection_id
    ]
    # A retried service call (same version) must not queue the same change twice.
    return APIWriteQueue.objects.bulk_create(jobs, ignore_conflicts=True)


def external_appointment_upsert(
    *,
    connection: Connection,
    external_id: str,
    therapist_id: int,
    start: datetime,
    end: datetime,
    status: str = AppointmentStatus.SCHEDULED,
    type: str = AppointmentType.CONSULT,
    patient_ref: str = "",
    office_id: int | None = None,
    raw: dict[str, Any] | None = None,
) -> tuple[Appointment, bool]:
    """Store one appointment as the source reports it; never refused, clashes become Conflicts.

    Single-row ingest (demo, tests, webhooks); bulk sync goes through sync_apply (integrations issue).
    Returns (appointment, created).
    """
    start, end = require_interval(start, end, max_length=MAX_APPOINTMENT_LENGTH)
    if status not in AppointmentStatus.values:
        raise InvalidInput(f"Unknown status {status!r}.")
    with transaction.atomic():
        # Same lock as hub bookings: a booking and an ingest for one therapist see each other's rows.
        therapist = Therapist.objects.select_for_update().get(pk=therapist_id)
        existing = Appointment.objects.filter(
            source_system=connection.platform,
            connection=connection,
            external_id=external_id,
            recurrence_id="",
        ).first()
        values = {
            "therapist_id": therapist_id,
            "start": start,
            "end": end,
            "status": status,
            "type": type,
            "patient_ref": patient_ref,
            "office_id": office_id,
            "timezone": therapist.timezone,
        }
        if existing is None:
            appointment = Appointment.objects.create(
                source_system=connection.platform,
                connection=connection,
                external_id=external_id,
                raw=raw,
                **values,
            )
            created, old = True, None
        else:
            appointment, created, old = existing, False, (existing.start, existing.end)
            if existing.merged_into_id is not None:
                # Staff merged it into the same visit from another source: it must not occupy time again.
                values["status"] = AppointmentStatus.CANCELLED
            if all(getattr(existing, k) == v for k, v in values.items()) and existing.raw == raw:
                return existing, False
            for k, v in values.items():
                setattr(appointment, k, v)
            appointment.raw = raw
            appointment.version += 1
            appointment.save()
        audit_record(
            actor=None,
            action="integrations.appointment.ingested",
            target=appointment,
            details={
                "connection_id": connection.pk,
                "external_id": external_id,
                "created": created,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "status": status,
            },
        )
        from conflicts.services import conflicts_detect

        lo = min(start, old[0]) if old else start
        hi = max(end, old[1]) if old else end
        conflicts_detect(therapist_ids=[therapist_id], start=lo, end=hi)
    return appointment, created
