"""Writes for integrations. For now: queueing hub changes for the external calendars that want them."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
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

from .base import ConnectorAuthError, ConnectorError, CursorExpired, FetchResult
from .models import WRITABLE_PLATFORMS, APIWriteQueue, Connection, ExternalRecord, SyncRun


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


# --- sync -----------------------------------------------------------------------------------------


@dataclass
class SyncCounts:
    fetched: int = 0
    created: int = 0
    updated: int = 0
    cancelled: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)


def patient_pseudonym(platform: str, key: str) -> str:
    """A stable pseudonym for a platform's patient key; the raw key is never stored."""
    if not key:
        return ""
    digest = hmac.new(settings.PATIENT_REF_KEY.encode(), f"{platform}:{key}".encode(), hashlib.sha256)
    return f"{platform}:{digest.hexdigest()[:20]}"


def _is_newer(new: str, old: str) -> bool:
    """Platform stamps compare as numbers or instants when both parse; otherwise any change is newer."""
    if not old or not new:
        return True
    if new.isdigit() and old.isdigit():
        return int(new) > int(old)
    try:
        return _stamp(new) > _stamp(old)
    except ValueError:
        return new != old


def _stamp(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace(" ", "T").replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(value)
    return parsed


def _chunks(items: list[Any], size: int = 500) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _detect_touched(touched: dict[int, list[datetime]]) -> None:
    """Conflict detection for what a batch changed: one call when the changes are close together in time
    (an incremental sync, a page of a full read), else one per therapist so no call loads a year."""
    from conflicts.services import conflicts_detect

    if not touched:
        return
    lo = min(min(v) for v in touched.values())
    hi = max(max(v) for v in touched.values())
    if hi - lo <= timedelta(days=31):
        conflicts_detect(therapist_ids=list(touched), start=lo, end=hi)
        return
    for therapist_id, instants in touched.items():
        conflicts_detect(therapist_ids=[therapist_id], start=min(instants), end=max(instants))


def sync_apply(*, connection: Connection, result: FetchResult) -> SyncCounts:
    """Apply one fetched batch: upsert canonical appointments, update the ledger, apply only authoritative
    deletions, detect conflicts on what changed. Idempotent; older versions never win. (Busy time is
    reported as an error until the calendar connectors bring it.)

    Bulk throughout: one ledger read per 500 ids, bulk inserts and upserts, detection per page.
    """
    counts = SyncCounts(fetched=len(result.events) + len(result.errors), errors=list(result.errors))
    result = calendar_events_apply(
        connection=connection, result=result, counts=counts
    )  # busy time, own events
    provider_map = {str(k): v for k, v in (connection.config or {}).get("provider_map", {}).items()}
    zones = dict(Therapist.objects.values_list("pk", "timezone"))
    now = timezone.now()
    platform = connection.platform
    with transaction.atomic():
        ledger: dict[tuple[str, str], ExternalRecord] = {}
        keys = list({e.external_id for e in result.events})
        for chunk in _chunks(keys):
            for rec in (
                ExternalRecord.objects.filter(connection=connection, external_id__in=chunk)
                .select_related("appointment")
                .defer("appointment__raw")
            ):
                ledger[(rec.external_id, rec.recurrence_id)] = rec
        new_appts: list[Appointment] = []
        new_records: list[ExternalRecord] = []
        changed_appts: list[Appointment] = []
        touched_records: list[ExternalRecord] = []
        touched: dict[int, list[datetime]] = {}
        cancel_ids: list[int] = []  # authoritative deletions: one UPDATE, no full-row rewrite
        linked: list[ExternalRecord] = []  # the ledger row of each new appointment, in order
        for event in result.events:
            rec = ledger.get((event.external_id, event.recurrence_id))
            # A record tombstoned because a complete read missed it is re-applied when it shows up again.
            fresh = (
                rec is None or event.deleted or rec.tombstone_reason or _is_newer(event.version, rec.version)
            )
            if not fresh:
                counts.unchanged += 1
                continue
            if event.busy_only:
                counts.errors.append(f"{event.external_id}: busy time is handled by calendar connectors")
                continue
            if event.deleted:
                appt = rec.appointment if rec is not None else None
                if appt is not None and appt.status != AppointmentStatus.CANCELLED:
                    cancel_ids.append(appt.pk)
                    counts.cancelled += 1
                    touched.setdefault(appt.therapist_id, []).extend([appt.start, appt.end])
                if rec is not None:
                    rec.tombstone_reason, rec.last_seen_at = "deleted at source", now
                    rec.version = event.version or rec.version
                    touched_records.append(rec)
                continue
            therapist_id = connection.therapist_id or provider_map.get(event.provider_key)
            if therapist_id is None or therapist_id not in zones:
                counts.errors.append(
                    f"{event.external_id}: no therapist mapped for provider {event.provider_key!r}"
                )
                continue
            if event.start is None or event.end is None or not event.start < event.end:
                counts.errors.append(f"{event.external_id}: missing or inverted start/end")
                continue
            if event.end - event.start > MAX_APPOINTMENT_LENGTH:
                counts.errors.append(f"{event.external_id}: longer than {MAX_APPOINTMENT_LENGTH}")
                continue
            values = {
                "therapist_id": therapist_id,
                "start": event.start,
                "end": event.end,
                "status": event.status
                if event.status in AppointmentStatus.values
                else AppointmentStatus.SCHEDULED,
                "type": event.type if event.type in AppointmentType.values else AppointmentType.OTHER,
                "patient_ref": patient_pseudonym(platform, event.patient_key),
                "timezone": zones[therapist_id],
            }
            if rec is None or rec.appointment is None:
                new_appts.append(
                    Appointment(
                        source_system=platform,
                        connection=connection,
                        external_id=event.external_id,
                        recurrence_id=event.recurrence_id,
                        raw=event.raw,
                        **values,
                    )
                )
                if rec is None:
                    rec = ExternalRecord(
                        connection=connection,
                        external_id=event.external_id,
                        recurrence_id=event.recurrence_id,
                    )
                    new_records.append(rec)
                else:
                    touched_records.append(rec)  # its appointment was deleted: relink, don't duplicate
                rec.version, rec.last_seen_at, rec.tombstone_reason = event.version, now, ""
                linked.append(rec)
                counts.created += 1
            else:
                appt = rec.appointment
                old = (appt.start, appt.end, appt.therapist_id)
                if appt.merged_into_id is not None:
                    values["status"] = AppointmentStatus.CANCELLED  # merged by staff: stays out of the way
                for k, v in values.items():
                    setattr(appt, k, v)
                appt.raw, appt.version = event.raw, appt.version + 1
                changed_appts.append(appt)
                rec.version, rec.last_seen_at, rec.tombstone_reason = event.version, now, ""
                touched_records.append(rec)
                touched.setdefault(old[2], []).extend(old[:2])
                if values["status"] == AppointmentStatus.CANCELLED:
                    counts.cancelled += 1
                else:
                    counts.updated += 1
            touched.setdefault(therapist_id, []).extend([event.start, event.end])

        if result.complete_window is not None:
            lo, hi = result.complete_window
            seen = {e.external_id for e in result.events} | set(result.unreadable_ids)
            gone = (
                ExternalRecord.objects.filter(
                    connection=connection,
                    # Only what this connection brought in: the hub's own appointments written to a calendar
                    # are judged by calendar_events_apply, not by their absence from a read.
                    appointment__connection=connection,
                    tombstone_reason="",
                    appointment__start__lt=hi,
                    appointment__end__gt=lo,
                )
                .exclude(appointment__status=AppointmentStatus.CANCELLED)
                .select_related("appointment")
                .defer("appointment__raw")
            )
            for rec in gone:
                if rec.external_id in seen:
                    continue
                appt = rec.appointment
                cancel_ids.append(appt.pk)
                rec.tombstone_reason, rec.last_seen_at = "missing from a complete read", now
                touched_records.append(rec)
                counts.cancelled += 1
                touched.setdefault(appt.therapist_id, []).extend([appt.start, appt.end])

        created = Appointment.objects.bulk_create(new_appts, batch_size=500)
        for appt, rec in zip(created, linked, strict=True):
            rec.appointment = appt
        ExternalRecord.objects.bulk_create(new_records, batch_size=500)
        # Updates as an upsert on the primary key (INSERT .. ON CONFLICT (id) DO UPDATE): much faster than
        # bulk_update's CASE WHEN per column, which SQLite parses slowly for large batches.
        Appointment.objects.bulk_create(
            changed_appts,
            update_conflicts=True,
            unique_fields=["id"],
            batch_size=500,
            update_fields=[
                "therapist",
                "start",
                "end",
                "status",
                "type",
                "patient_ref",
                "timezone",
                "raw",
                "version",
                "updated",
            ],
        )
        ExternalRecord.objects.bulk_create(
            touched_records,
            update_conflicts=True,
            unique_fields=["id"],
            batch_size=500,
            update_fields=["appointment", "version", "last_seen_at", "tombstone_reason"],
        )
        for chunk in _chunks(cancel_ids):
            Appointment.objects.filter(pk__in=chunk).update(
                status=AppointmentStatus.CANCELLED, version=F("version") + 1, updated=now
            )
        _detect_touched(touched)
        audit_record(
            actor=None,
            action="integrations.connection.synced",
            target=connection,
            details={
                "fetched": counts.fetched,
                "created": counts.created,
                "updated": counts.updated,
                "cancelled": counts.cancelled,
                "unchanged": counts.unchanged,
                "errors": len(counts.errors),
                "full_read": result.complete_window is not None,
            },
        )
    return counts


# --- running a sync -------------------------------------------------------------------------------


def _window(connection: Connection) -> tuple[datetime, datetime]:
    config = connection.config or {}
    now = timezone.now()
    return (
        now - timedelta(days=int(config.get("window_past_days", 30))),
        now + timedelta(days=int(config.get("window_future_days", 180))),
    )


def connection_sync(
    *, connection_id: int, actor: Any | None = None, force_full: bool = False
) -> SyncRun | None:
    """Run one sync of a connection: fetch through its connector, apply, record the run.

    A paused or needs-reauth connection does not run (returns None). A failed fetch changes no appointment:
    the run and the connection record the error; auth failures mark the connection needs_reauth.
    """
    from .registry import connector_class

    with transaction.atomic():
        # The row lock makes concurrent syncs of one connection queue up instead of interleaving.
        connection = Connection.objects.select_for_update().get(pk=connection_id)
        if connection.status in (Connection.Status.PAUSED, Connection.Status.NEEDS_REAUTH):
            return None
        run = SyncRun.objects.create(connection=connection, started_at=timezone.now())
        connector = connector_class(connection.platform)(connection)
        window = _window(connection)
        cursor = None if force_full else (connection.cursor or None)
        try:
            try:
                result = connector.fetch(cursor=cursor, window=window)
            except CursorExpired:
                cursor = None
                result = connector.fetch(cursor=None, window=window)
        except ConnectorError as exc:
            run.status, run.finished_at = SyncRun.Status.FAILED, timezone.now()
            run.errors = [exc.message]
            run.save()
            connection.status = (
                Connection.Status.NEEDS_REAUTH
                if isinstance(exc, ConnectorAuthError)
                else Connection.Status.ERROR
                if exc.permanent
                else connection.status
            )
            connection.last_error = exc.message
            connection.save(update_fields=["status", "last_error", "updated"])
            audit_record(
                actor=actor,
                action="integrations.connection.sync_failed",
                target=connection,
                details={
                    "error": exc.message,
                    "permanent": exc.permanent,
                    "needs_reauth": isinstance(exc, ConnectorAuthError),
                },
            )
            return run
        counts = sync_apply(connection=connection, result=result)
        run.full_read = cursor is None
        for name in ("fetched", "created", "updated", "cancelled", "unchanged"):
            setattr(run, name, getattr(counts, name))
        run.errors = counts.errors[:100]
        run.status, run.finished_at = SyncRun.Status.OK, timezone.now()
        run.save()
        if result.cursor is not None:
            connection.cursor = result.cursor
        connection.status, connection.last_error, connection.last_synced_at = (
            Connection.Status.OK,
            "",
            run.finished_at,
        )
        connection.save(update_fields=["cursor", "status", "last_error", "last_synced_at", "updated"])
    return run


def connection_schedule(*, connection: Connection) -> None:
    """Create or update the connection's own periodic sync task (django-celery-beat), at least the
    platform's minimum interval apart; disabled while the connection is paused or needs re-authorisation."""
    import json

    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from .registry import connector_class

    try:
        minimum = connector_class(connection.platform).min_sync_interval
    except LookupError:
        return  # no connector yet for this platform: nothing to schedule
    minutes = max(connection.sync_interval_minutes, int(minimum.total_seconds() // 60))
    schedule, _ = IntervalSchedule.objects.get_or_create(every=minutes, period=IntervalSchedule.MINUTES)
    task, created = PeriodicTask.objects.update_or_create(
        name=f"sync connection {connection.pk}",
        defaults={
            "task": "integrations.tasks.connection_sync_task",
            "interval": schedule,
            "args": json.dumps([connection.pk]),
            "enabled": connection.status not in (Connection.Status.PAUSED, Connection.Status.NEEDS_REAUTH),
        },
    )
    if created:
        # Beat counts an interval from the last run; a new connection should sync at the next tick, not
        # one whole interval later.
        task.last_run_at = timezone.now() - timedelta(minutes=minutes)
        task.save(update_fields=["last_run_at"])


def connection_request_sync(*, actor: Any | None, connection: Connection, reason: str = "requested") -> None:
    """Ask for an early sync (a person, a webhook): audited, and sent to a worker once committed."""
    from .tasks import connection_sync_task

    with transaction.atomic():
        audit_record(
            actor=actor,
            action="integrations.connection.sync_requested",
            target=connection,
            details={"reason": reason},
        )
        connection_id = connection.pk
        transaction.on_commit(lambda: connection_sync_task.delay(connection_id))


# --- calendars: busy time and the hub's own events (Google; Outlook and CalDAV to follow) ----------------
#
# A connected calendar reports two kinds of events besides appointments: busy time (events the hub did not
# write: only their time is kept, as BusyBlock rows) and the hub's own appointments read back (events carrying
# the hub's private marker, ExternalEvent.hub_uid). sync_apply hands both to calendar_events_apply first.
#
# The rule for the hub's own events, when Google and the hub disagree:
# - timing (start/end) is last-writer-wins by timestamp: the event's ``updated`` stamp against the
#   appointment's ``updated``. Google newer: the hub appointment moves (audited with source "google"; a clash
#   opens a conflict rather than being refused, since the therapist already moved it). Hub newer: the hub's
#   time is pushed again.
# - everything else (status, title, description, attendees ...) belongs to the hub: a deletion in Google
#   cancels the appointment only when the connection has ``config["google_may_cancel"]``; otherwise the event
#   is written again (its id is reused) and the run records a note. Appointments that came from another
#   platform (Zocdoc ...) never take their timing from Google: that platform is their source.


def calendar_events_apply(*, connection: Connection, result: FetchResult, counts: SyncCounts) -> FetchResult:
    """Apply the busy time and the hub's own events of ``result``; return the rest for sync_apply."""
    from dataclasses import replace

    from scheduler.models import BusyBlock

    calendar = [e for e in result.events if e.busy_only or e.hub_uid]
    if not calendar and (
        result.complete_window is None or not BusyBlock.objects.filter(connection=connection).exists()
    ):
        return result
    with transaction.atomic():
        ledger: dict[str, ExternalRecord] = {}
        for chunk in _chunks(list({e.external_id for e in calendar})):
            for rec in ExternalRecord.objects.filter(
                connection=connection, external_id__in=chunk, recurrence_id=""
            ).select_related("appointment", "busy_block"):
                ledger[rec.external_id] = rec
        own, busy = [], []
        for event in calendar:
            rec = ledger.get(event.external_id)
            ours = rec is not None and rec.appointment_id is not None and rec.busy_block_id is None
            (own if event.hub_uid or ours else busy).append(event)
        not_ours = own_events_apply(connection=connection, events=own, ledger=ledger, counts=counts)
        seen = {e.external_id for e in calendar} | set(result.unreadable_ids)
        busy_blocks_apply(
            connection=connection,
            events=busy + not_ours,
            ledger=ledger,
            complete_window=result.complete_window,
            seen=seen,
            counts=counts,
        )
    return replace(result, events=[e for e in result.events if not (e.busy_only or e.hub_uid)])


def busy_blocks_apply(
    *,
    connection: Connection,
    events: list[Any],
    ledger: dict[str, ExternalRecord],
    complete_window: tuple[datetime, datetime] | None,
    seen: set[str],
    counts: SyncCounts,
) -> None:
    """Upsert the connection's busy blocks (time only); remove them on a tombstone, or when a complete read
    of a window no longer has them; then detect conflicts where anything changed."""
    from scheduler.models import BusyBlock

    therapist_id = connection.therapist_id
    if therapist_id is None:
        counts.errors.extend(f"{e.external_id}: busy time needs a therapist's connection" for e in events)
        return
    now = timezone.now()
    blocks = {
        b.external_id: b
        for chunk in _chunks([e.external_id for e in events])
        for b in BusyBlock.objects.filter(connection=connection, external_id__in=chunk)
    }
    touched: dict[int, list[datetime]] = {}
    gone: list[int] = []
    for event in events:
        block = blocks.get(event.external_id)
        rec = ledger.get(event.external_id)
        if rec is not None and not event.deleted and not rec.tombstone_reason and block is not None:
            if not _is_newer(event.version, rec.version):
                counts.unchanged += 1
                continue
        if event.deleted:
            if block is not None:
                gone.append(block.pk)
                touched.setdefault(therapist_id, []).extend([block.start, block.end])
                counts.cancelled += 1
            if rec is not None:
                rec.tombstone_reason, rec.last_seen_at, rec.busy_block = (
                    "deleted or free at source",
                    now,
                    None,
                )
                rec.version = event.version or rec.version
                rec.save(update_fields=["tombstone_reason", "last_seen_at", "busy_block", "version"])
            continue
        if event.start is None or event.end is None or not event.start < event.end:
            counts.errors.append(f"{event.external_id}: missing or inverted start/end")
            continue
        if block is None:
            block = BusyBlock.objects.create(
                therapist_id=therapist_id,
                start=event.start,
                end=event.end,
                source_system=connection.platform,
                connection=connection,
                external_id=event.external_id,
            )
            counts.created += 1
        elif (block.start, block.end) != (event.start, event.end):
            touched.setdefault(therapist_id, []).extend([block.start, block.end])
            block.start, block.end = event.start, event.end
            block.save(update_fields=["start", "end", "updated"])
            counts.updated += 1
        else:
            counts.unchanged += 1
        touched.setdefault(therapist_id, []).extend([event.start, event.end])
        if rec is None:
            rec = ExternalRecord(connection=connection, external_id=event.external_id)
        rec.busy_block, rec.appointment = block, None
        rec.version, rec.last_seen_at, rec.tombstone_reason = event.version, now, ""
        rec.save()
    if complete_window is not None:
        lo, hi = complete_window
        for block in BusyBlock.objects.filter(connection=connection, start__lt=hi, end__gt=lo).exclude(
            external_id__in=seen
        ):
            gone.append(block.pk)
            touched.setdefault(therapist_id, []).extend([block.start, block.end])
            counts.cancelled += 1
            ExternalRecord.objects.filter(connection=connection, busy_block=block).update(
                tombstone_reason="missing from a complete read", last_seen_at=now
            )
    if gone:
        BusyBlock.objects.filter(pk__in=gone).delete()
    _detect_touched(touched)


def own_events_apply(
    *, connection: Connection, events: list[Any], ledger: dict[str, ExternalRecord], counts: SyncCounts
) -> list[Any]:
    """The hub's own appointments read back from a calendar (the rule above). Returns the events that turn
    out not to be ours after all (an unknown uid, another therapist's appointment): they are busy time."""
    import uuid

    not_ours: list[Any] = []
    now = timezone.now()
    for event in events:
        rec = ledger.get(event.external_id)
        appointment = rec.appointment if rec is not None else None
        if appointment is None and event.hub_uid:
            try:
                appointment = Appointment.objects.filter(uid=uuid.UUID(event.hub_uid)).first()
            except ValueError:
                appointment = None
        if appointment is None or appointment.therapist_id != connection.therapist_id:
            if not event.deleted or rec is None:
                not_ours.append(event)
            continue
        if rec is None:
            rec = ExternalRecord(
                connection=connection, external_id=event.external_id, appointment=appointment
            )
        rec.version, rec.last_seen_at = event.version or rec.version, now
        rec.save()
        if event.deleted:
            _own_event_deleted(connection=connection, appointment=appointment, rec=rec, counts=counts)
        elif appointment.status == AppointmentStatus.CANCELLED:
            # Cancelled in the hub, still in the calendar: the hub decides status; send the deletion again.
            write_queue_enqueue(appointment=appointment, operation="delete")
            counts.unchanged += 1
        elif (appointment.start, appointment.end) == (event.start, event.end):
            counts.unchanged += 1  # our own write read back (echo): nothing to do
        elif (
            appointment.source_system == "hub"
            and event.version
            and _stamp(event.version) > appointment.updated
            and appointment.status in (AppointmentStatus.SCHEDULED, AppointmentStatus.CONFIRMED)
        ):
            _own_event_moved(connection=connection, appointment=appointment, event=event, counts=counts)
        else:
            write_queue_enqueue(appointment=appointment, operation="update")  # the hub's time wins
            counts.unchanged += 1
    return not_ours


def _own_event_deleted(
    *, connection: Connection, appointment: Appointment, rec: ExternalRecord, counts: SyncCounts
) -> None:
    from scheduler.services import appointment_cancel

    if appointment.status not in (AppointmentStatus.SCHEDULED, AppointmentStatus.CONFIRMED):
        counts.unchanged += 1  # our own cancellation read back
        return
    if (connection.config or {}).get("google_may_cancel") and appointment.source_system == "hub":
        appointment_cancel(actor=None, appointment=appointment, reason="Deleted in the connected calendar.")
        rec.tombstone_reason = "deleted at source"
        rec.save(update_fields=["tombstone_reason"])
        audit_record(
            actor=None,
            action="integrations.appointment.cancelled_in_calendar",
            target=appointment,
            details={"source": connection.platform, "connection_id": connection.pk},
        )
        counts.cancelled += 1
        return
    # The calendar may not cancel: write the event again (its id is reused) and say so.
    Appointment.objects.filter(pk=appointment.pk).update(version=F("version") + 1, updated=timezone.now())
    appointment.refresh_from_db(fields=["version", "updated"])
    write_queue_enqueue(appointment=appointment, operation="create")
    audit_record(
        actor=None,
        action="integrations.appointment.restored_in_calendar",
        target=appointment,
        details={"source": connection.platform, "connection_id": connection.pk},
    )
    counts.errors.append(
        f"{rec.external_id}: deleted in {connection.get_platform_display()}; written again, because this "
        "connection does not let the calendar cancel hub appointments (cancel it in the hub instead)."
    )


def _own_event_moved(
    *, connection: Connection, appointment: Appointment, event: Any, counts: SyncCounts
) -> None:
    """Apply a time the therapist set in the calendar: never refused (it already happened there); a clash is
    stored as an admin-style override with the reason, and detection opens the conflict for staff."""
    from conflicts.services import conflicts_detect
    from scheduler.services import _clashing_ids

    try:
        start, end = require_interval(event.start, event.end, max_length=MAX_APPOINTMENT_LENGTH)
    except InvalidInput as exc:
        counts.errors.append(f"{event.external_id}: {exc}; the hub's time is written back")
        write_queue_enqueue(appointment=appointment, operation="update")
        return
    Therapist.objects.select_for_update().get(pk=appointment.therapist_id)
    old = (appointment.start, appointment.end)
    clashes = _clashing_ids(
        therapist_id=appointment.therapist_id,
        start=start,
        end=end,
        service=appointment.service,
        exclude_pk=appointment.pk,
    )
    appointment.start, appointment.end = start, end
    if clashes and not appointment.override_reason:
        # Exempts it from the database's no-double-booking constraint; the open conflict is the flag.
        appointment.override_reason = f"Moved in {connection.get_platform_display()} onto a clash."
    appointment.version += 1
    appointment.save(update_fields=["start", "end", "override_reason", "version", "updated"])
    audit_record(
        actor=None,
        action="integrations.appointment.moved_in_calendar",
        target=appointment,
        details={
            "source": connection.platform,
            "connection_id": connection.pk,
            "from": [old[0].isoformat(), old[1].isoformat()],
            "to": [start.isoformat(), end.isoformat()],
            "clashes": clashes,
        },
    )
    write_queue_enqueue(appointment=appointment, operation="update")  # the therapist's other calendars
    conflicts_detect(therapist_ids=[appointment.therapist_id], start=min(old[0], start), end=max(old[1], end))
    counts.updated += 1
