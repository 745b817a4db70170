"""Writes for integrations: applying what connectors fetch (sync_apply, connection_sync), the hub's own events
read back from calendars, the write queue and its drain, schedules, credentials and early-sync requests."""

from __future__ import annotations

import hashlib
import hmac
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from audit.services import audit_record
from lib.bulk import insert_rows, update_rows
from lib.errors import InvalidInput
from lib.timeutil import require_interval
from scheduler.models import (
    MAX_APPOINTMENT_LENGTH,
    Appointment,
    AppointmentStatus,
    AppointmentType,
    BusyBlock,
    Therapist,
)

from .base import ConnectorAuthError, ConnectorError, CursorExpired, ExternalEvent, FetchResult
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
    if new.isascii() and new.isdigit() and old.isascii() and old.isdigit():
        return (len(new.lstrip("0")), new.lstrip("0")) > (len(old.lstrip("0")), old.lstrip("0"))  # any length
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


def _event_problem(event: ExternalEvent, therapist_id: int | None) -> str:
    """Why an event cannot be stored (reported in the run's errors, the rest applied), or ""."""
    if therapist_id is None:
        return f"{event.external_id}: no therapist mapped for provider {event.provider_key!r}"
    if event.start is None or event.end is None or not event.start < event.end:
        return f"{event.external_id}: missing or inverted start/end"
    return ""


def _busy_apply(
    connection: Connection,
    items: list[tuple[ExternalEvent, ExternalRecord | None]],
    *,
    therapist_for: Any,
    complete_window: tuple[datetime, datetime] | None,
    seen: Any,
    now: datetime,
    counts: SyncCounts,
    touched: dict[int, list[datetime]],
    touched_records: list[ExternalRecord],
    new_records: list[ExternalRecord],
) -> None:
    """External busy time (calendar events the hub did not write): BusyBlock rows, no details kept.

    A block is removed only on an authoritative "gone": a tombstone (deleted, cancelled, now free or
    declined, as the connector decides) or its absence from a complete read of the window. The ledger row
    stays (tombstoned), so a block that comes back is recreated, not duplicated.
    """
    new_blocks: list[BusyBlock] = []
    block_records: list[ExternalRecord] = []  # the ledger row of each new block, in order
    changed: list[BusyBlock] = []
    gone: list[tuple[BusyBlock, ExternalRecord]] = []
    for event, rec in items:
        block = rec.busy_block if rec is not None else None
        if event.deleted or not event.busy_only:
            if not event.busy_only and not event.deleted:
                # It was busy time and is now reported as an appointment: take the block away first; the
                # next sync (or a full read) brings the appointment through the appointment path.
                counts.errors.append(f"{event.external_id}: changed from busy time to an appointment")
            if block is not None:
                gone.append((block, rec))
            elif rec is not None and not rec.tombstone_reason:
                rec.tombstone_reason, rec.last_seen_at = "deleted at source", now
                touched_records.append(rec)
            continue
        therapist_id = therapist_for(event.provider_key)
        problem = _event_problem(event, therapist_id)
        if problem:
            counts.errors.append(problem)
            continue
        if block is None:
            block = BusyBlock(
                therapist_id=therapist_id,
                start=event.start,
                end=event.end,
                source_system=connection.platform,
                connection=connection,
                external_id=f"{event.external_id}/{event.recurrence_id}"[:255]
                if event.recurrence_id
                else event.external_id[:255],
            )
            new_blocks.append(block)
            if rec is None:
                rec = ExternalRecord(
                    connection=connection, external_id=event.external_id, recurrence_id=event.recurrence_id
                )
                new_records.append(rec)
            else:
                touched_records.append(rec)
            block_records.append(rec)
            counts.created += 1
        else:
            touched.setdefault(block.therapist_id, []).extend([block.start, block.end])
            block.therapist_id, block.start, block.end, block.updated = (
                therapist_id,
                event.start,
                event.end,
                now,
            )
            changed.append(block)
            touched_records.append(rec)
            counts.updated += 1
        rec.version, rec.last_seen_at, rec.tombstone_reason = event.version, now, ""
        touched.setdefault(therapist_id, []).extend([event.start, event.end])

    if complete_window is not None:
        lo, hi = complete_window
        for rec in ExternalRecord.objects.filter(
            connection=connection,
            busy_block__start__gte=lo,
            busy_block__start__lt=hi,  # as for appointments
        ).select_related("busy_block"):
            if not seen(rec):
                gone.append((rec.busy_block, rec))
    for block, rec in gone:
        rec.busy_block, rec.tombstone_reason, rec.last_seen_at = None, "deleted at source", now
        if rec.pk is not None:
            touched_records.append(rec)
        touched.setdefault(block.therapist_id, []).extend([block.start, block.end])
        counts.cancelled += 1
    for chunk in _chunks([block.pk for block, _ in gone]):
        BusyBlock.objects.filter(pk__in=chunk).delete()
    BusyBlock.objects.bulk_create(new_blocks, batch_size=500)
    for block, rec in zip(new_blocks, block_records, strict=True):
        rec.busy_block = block
    BusyBlock.objects.bulk_update(changed, ["therapist", "start", "end", "updated"], batch_size=500)


_STATUSES = frozenset(AppointmentStatus.values)
_LEDGER_APPOINTMENT_DEFERRED = tuple(
    f"appointment__{name}"
    for name in (
        "raw",
        "created",
        "updated",
        "override_reason",
        "series",
        "uid",
        "created_by",
        "office",
        "service",
    )
)
_TYPES = frozenset(AppointmentType.values)
# What a source's report sets on an appointment (the keys of `values` in sync_apply).
_REPORTED_COLUMNS = ("therapist_id", "start", "end", "status", "type", "patient_ref", "timezone")
_CHANGED_APPOINTMENT_COLUMNS = (*_REPORTED_COLUMNS, "raw", "version", "updated")
_NEW_APPOINTMENT_COLUMNS = (
    "source_system",
    "connection_id",
    "external_id",
    "recurrence_id",
    "raw",
    *_REPORTED_COLUMNS,
)
_LEDGER_CHANGES = ("appointment_id", "busy_block_id", "version", "last_seen_at", "tombstone_reason")
_LEDGER_COLUMNS = ("connection_id", "external_id", "recurrence_id", *_LEDGER_CHANGES)


def sync_apply(*, connection: Connection, result: FetchResult) -> SyncCounts:
    """Apply one fetched batch: upsert canonical appointments, update the ledger, apply only authoritative
    deletions, detect conflicts on what changed. Idempotent; older versions never win. Busy time becomes
    BusyBlocks (`_busy_apply`); the hub's own events read back from a calendar go to calendar_events_apply.

    Bulk throughout: one ledger read per 500 ids, executemany inserts and updates, detection per page.
    """
    counts = SyncCounts(fetched=len(result.events) + len(result.errors), errors=list(result.errors))
    result = calendar_events_apply(
        connection=connection, result=result, counts=counts
    )  # the hub's own events read back from a calendar
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
                .select_related("appointment", "busy_block")
                # What applying a change reads: every loaded column costs a conversion per row.
                .defer(*_LEDGER_APPOINTMENT_DEFERRED)
            ):
                ledger[(rec.external_id, rec.recurrence_id)] = rec
        new_appts: list[dict[str, Any]] = []
        new_records: list[ExternalRecord] = []
        changed_appts: list[dict[str, Any]] = []
        touched_records: list[ExternalRecord] = []
        touched: dict[int, list[datetime]] = {}
        cancel_ids: list[int] = []  # authoritative deletions: one UPDATE, no full-row rewrite
        linked: list[ExternalRecord] = []  # the ledger row of each new appointment, in order
        busy: list[tuple[ExternalEvent, ExternalRecord | None]] = []  # external busy time, applied apart
        for event in result.events:
            rec = ledger.get((event.external_id, event.recurrence_id))
            if (
                rec is not None
                and rec.appointment is not None
                and rec.appointment.connection_id != connection.pk
            ):
                # The hub's own appointment that the write queue put on this calendar: reading it back is an
                # echo, never a change of the appointment (calendar connectors apply their own rule).
                counts.unchanged += 1
                continue
            # A record tombstoned because a complete read missed it is re-applied when it shows up again.
            fresh = (
                rec is None or event.deleted or rec.tombstone_reason or _is_newer(event.version, rec.version)
            )
            if not fresh:
                counts.unchanged += 1
                continue
            if event.busy_only or (rec is not None and rec.busy_block_id is not None):
                busy.append((event, rec))
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
            problem = _event_problem(event, therapist_id if therapist_id in zones else None)
            if not problem and event.end - event.start > MAX_APPOINTMENT_LENGTH:
                problem = f"{event.external_id}: longer than {MAX_APPOINTMENT_LENGTH}"
            if problem:
                counts.errors.append(problem)
                continue
            values = {
                "therapist_id": therapist_id,
                "start": event.start,
                "end": event.end,
                "status": event.status if event.status in _STATUSES else AppointmentStatus.SCHEDULED,
                "type": event.type if event.type in _TYPES else AppointmentType.OTHER,
                "patient_ref": patient_pseudonym(platform, event.patient_key),
                "timezone": zones[therapist_id],
            }
            if rec is None or rec.appointment is None:
                new_appts.append(
                    {
                        "source_system": platform,
                        "connection_id": connection.pk,
                        "external_id": event.external_id,
                        "recurrence_id": event.recurrence_id,
                        "raw": event.raw,
                        **values,
                    }
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
                if appt.merged_into_id is not None:
                    values["status"] = AppointmentStatus.CANCELLED  # merged by staff: stays out of the way
                changed_appts.append({**values, "pk": appt.pk, "raw": event.raw, "version": appt.version + 1})
                rec.version, rec.last_seen_at, rec.tombstone_reason = event.version, now, ""
                touched_records.append(rec)
                touched.setdefault(appt.therapist_id, []).extend([appt.start, appt.end])
                if values["status"] == AppointmentStatus.CANCELLED:
                    counts.cancelled += 1
                else:
                    counts.updated += 1
            touched.setdefault(therapist_id, []).extend([event.start, event.end])

        # Identity is external id + recurrence id: one vanished occurrence of a series is gone on its own.
        returned = {(e.external_id, e.recurrence_id) for e in result.events}

        def seen(rec: ExternalRecord) -> bool:
            return (
                rec.external_id,
                rec.recurrence_id,
            ) in returned or rec.external_id in result.unreadable_ids

        _busy_apply(
            connection,
            busy,
            therapist_for=lambda key: connection.therapist_id or provider_map.get(key),
            complete_window=result.complete_window,
            seen=seen,
            now=now,
            counts=counts,
            touched=touched,
            touched_records=touched_records,
            new_records=new_records,
        )
        if result.complete_window is not None:
            lo, hi = result.complete_window
            gone = (
                ExternalRecord.objects.filter(
                    connection=connection,
                    # Only what this connection brought in: the hub's own appointments written to a calendar
                    # are judged by calendar_events_apply, not by their absence from a read.
                    appointment__connection=connection,
                    tombstone_reason="",
                    # Judged by start only: a connector reads at least everything that starts in the
                    # window, not always what merely overlaps its start (Zocdoc filters by start time), so
                    # one the moving window's start has passed is never cancelled for being missed.
                    appointment__start__gte=lo,
                    appointment__start__lt=hi,
                )
                .exclude(appointment__status=AppointmentStatus.CANCELLED)
                .select_related("appointment")
                .defer(*_LEDGER_APPOINTMENT_DEFERRED)
            )
            for rec in gone:
                if seen(rec):
                    continue
                appt = rec.appointment
                cancel_ids.append(appt.pk)
                rec.tombstone_reason, rec.last_seen_at = "missing from a complete read", now
                touched_records.append(rec)
                counts.cancelled += 1
                touched.setdefault(appt.therapist_id, []).extend([appt.start, appt.end])

        # executemany without Django's per-value preparation (lib.bulk): most of a page's time otherwise.
        insert_rows(Appointment, new_appts, attnames=_NEW_APPOINTMENT_COLUMNS)
        ids: dict[tuple[str, str], int] = {}
        for chunk in _chunks([row["external_id"] for row in new_appts]):
            ids.update(
                ((eid, rid), pk)
                for pk, eid, rid in Appointment.objects.filter(
                    source_system=platform, connection=connection, external_id__in=chunk
                ).values_list("pk", "external_id", "recurrence_id")
            )
        for row, rec in zip(new_appts, linked, strict=True):
            rec.appointment_id = ids[(row["external_id"], row["recurrence_id"])]
        insert_rows(
            ExternalRecord,
            ({name: getattr(rec, name) for name in _LEDGER_COLUMNS} for rec in new_records),
            attnames=_LEDGER_COLUMNS,
        )
        for row in changed_appts:
            row["updated"] = now
        update_rows(Appointment, changed_appts, attnames=_CHANGED_APPOINTMENT_COLUMNS)
        update_rows(
            ExternalRecord,
            (
                {"pk": rec.pk, **{name: getattr(rec, name) for name in _LEDGER_CHANGES}}
                for rec in touched_records
            ),
            attnames=_LEDGER_CHANGES,
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


#: How long a sync may fetch before another worker may start one (a crash mid-fetch): longer than any
#: platform read takes with its per-request timeouts.
SYNC_LEASE = timedelta(minutes=30)


def connection_sync(
    *, connection_id: int, actor: Any | None = None, force_full: bool = False
) -> SyncRun | None:
    """Run one sync of a connection: fetch through its connector, apply, record the run.

    Three steps, and the fetch (HTTP) is in no transaction: claim the connection (a short transaction that
    takes a lease and records the run as running), fetch, then apply and record in a second transaction,
    only while the lease is still ours. A paused or needs-reauth connection does not run (returns None), nor
    does one being synced already (its sync is asked to run again when it ends). A failed fetch changes no
    appointment: the run and the connection record the error; auth failures mark the connection
    needs_reauth.
    """
    from .registry import connector_class

    claimed = _sync_claim(connection_id=connection_id, force_full=force_full)
    if claimed is None:
        return None
    connection, run, lease, cursor, window = claimed
    connector = connector_class(connection.platform)(connection)
    error: ConnectorError | None = None
    try:
        try:
            result = connector.fetch(cursor=cursor, window=window)
        except CursorExpired:
            cursor = None
            result = connector.fetch(cursor=None, window=window)
    except ConnectorError as exc:
        error = exc
    except BaseException:
        _sync_release(connection_id=connection_id, run=run, lease=lease, reason="crashed")
        raise
    _store_refreshed_tokens(connection, connector)
    with transaction.atomic():
        connection = Connection.objects.select_for_update().get(pk=connection_id)
        if connection.sync_lease_until != lease:
            # Our lease expired and another sync took over: what we fetched may be older than what it
            # applies, so nothing of ours is applied.
            run.status, run.finished_at = SyncRun.Status.FAILED, timezone.now()
            run.errors = ["The sync took longer than its lease; another sync took over."]
            run.save()
            return run
        connection.sync_lease_until = None
        if connection.sync_requested_at is not None:
            # A change was announced while we fetched: it gets a sync of its own (the request stays set, so
            # further announcements join it).
            _requeue = connection.pk
            transaction.on_commit(lambda: _sync_task_delay(_requeue))
        if error is not None:
            _sync_record_failure(connection=connection, run=run, exc=error, actor=actor)
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
        if connection.status not in (Connection.Status.PAUSED, Connection.Status.NEEDS_REAUTH):
            connection.status = Connection.Status.OK  # (paused or disconnected while we fetched: stays so)
        connection.last_error, connection.last_synced_at = "", run.finished_at
        connection.sync_not_before, connection.failed_syncs = None, 0
        fields = ["cursor", "status", "last_error", "last_synced_at", "sync_not_before", "failed_syncs"]
        if run.full_read:
            connection.last_full_sync_at = run.started_at
            fields.append("last_full_sync_at")
        connection.save(update_fields=[*fields, "sync_lease_until", "updated"])
    return run


def _sync_claim(
    *, connection_id: int, force_full: bool
) -> tuple[Connection, SyncRun, datetime, str | None, tuple[datetime, datetime]] | None:
    """Take the connection's sync lease and record a running run; None when the sync must not run now."""
    with transaction.atomic():
        connection = Connection.objects.select_for_update().get(pk=connection_id)
        now = timezone.now()
        if connection.status in (Connection.Status.PAUSED, Connection.Status.NEEDS_REAUTH):
            return None
        if connection.sync_not_before is not None and now < connection.sync_not_before:
            return None  # the platform asked for a pause (Retry-After): the next tick after it runs
        if connection.sync_lease_until is not None and now < connection.sync_lease_until:
            # Another worker is fetching; it may have started before the change this run was meant for,
            # so it is asked to run once more when it ends.
            Connection.objects.filter(pk=connection.pk, sync_requested_at__isnull=True).update(
                sync_requested_at=now
            )
            return None
        # This run serves every early request made so far; a request from now on queues a new one.
        lease = now + SYNC_LEASE
        Connection.objects.filter(pk=connection.pk).update(sync_requested_at=None, sync_lease_until=lease)
        connection.sync_requested_at, connection.sync_lease_until = None, lease
        run = SyncRun.objects.create(connection=connection, started_at=now)
        window = _window(connection)
        # The moving window: a cursor alone never brings in what was beyond the horizon at the last full
        # read, so the window is re-read in full (diffed against the ledger) once that read is stale.
        full_due = _full_read_due(connection, now)
        cursor = None if force_full or full_due else (connection.cursor or None)
    return connection, run, lease, cursor, window


def _sync_release(*, connection_id: int, run: SyncRun, lease: datetime, reason: str) -> None:
    """An unexpected error in the fetch: the run is failed and the lease given back (if still ours)."""
    with transaction.atomic():
        Connection.objects.filter(pk=connection_id, sync_lease_until=lease).update(sync_lease_until=None)
        run.status, run.finished_at = SyncRun.Status.FAILED, timezone.now()
        run.errors = [f"The sync {reason}; see the worker's log."]
        run.save()


def _sync_task_delay(connection_id: int) -> None:
    from .tasks import connection_sync_task

    connection_sync_task.delay(connection_id)


def _sync_record_failure(*, connection: Connection, run: SyncRun, exc: ConnectorError, actor: Any) -> None:
    run.status, run.finished_at = SyncRun.Status.FAILED, timezone.now()
    run.errors = [exc.message]
    run.save()
    connection.failed_syncs += 1
    if connection.status not in (Connection.Status.PAUSED, Connection.Status.NEEDS_REAUTH):
        connection.status = (
            Connection.Status.NEEDS_REAUTH
            if isinstance(exc, ConnectorAuthError)
            else Connection.Status.ERROR
            if exc.permanent or connection.failed_syncs >= Connection.FAILURES_BEFORE_ERROR
            else connection.status
        )
    connection.last_error = exc.message
    if exc.retry_after is not None:
        connection.sync_not_before = timezone.now() + timedelta(seconds=max(0.0, exc.retry_after))
    connection.save(
        update_fields=[
            "status",
            "last_error",
            "sync_not_before",
            "failed_syncs",
            "sync_lease_until",
            "updated",
        ]
    )
    audit_record(
        actor=actor,
        action="integrations.connection.sync_failed",
        target=connection,
        details={
            "error": exc.message,
            "failed_syncs": connection.failed_syncs,
            "status": connection.status,
            "permanent": exc.permanent,
            "needs_reauth": isinstance(exc, ConnectorAuthError),
            "retry_after": exc.retry_after,
        },
    )


def _full_read_due(connection: Connection, now: datetime) -> bool:
    """Whether the window's last complete read is older than the full-read interval (settings
    SYNC_FULL_READ_HOURS, default 24; per connection ``config["full_read_hours"]``)."""
    if connection.last_full_sync_at is None:
        return True
    hours = (connection.config or {}).get("full_read_hours", settings.SYNC_FULL_READ_HOURS)
    try:
        interval = timedelta(hours=float(hours))
    except (TypeError, ValueError):
        interval = timedelta(hours=settings.SYNC_FULL_READ_HOURS)
    return now - connection.last_full_sync_at >= interval


def _store_refreshed_tokens(connection: Connection, connector: Any) -> None:
    """Keep what the connector renewed (encrypted with the rest of the credentials)."""
    renewed = connector.refreshed_tokens()
    if not renewed:
        return
    with transaction.atomic():
        current = Connection.objects.select_for_update().only("credentials").get(pk=connection.pk)
        connection.credentials = {**(current.credentials or {}), **renewed}
        Connection.objects.filter(pk=connection.pk).update(credentials=connection.credentials)


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


def connection_set_credentials(*, actor: Any, connection: Connection, values: dict[str, Any]) -> Connection:
    """Merge ``values`` into the connection's encrypted credentials (a None value removes that key).
    Audited by key name only: the values never reach the log. A connection waiting for re-authorisation
    is given another chance (status ok), since new credentials are what it was waiting for."""
    if not isinstance(values, dict) or not all(isinstance(k, str) and k for k in values):
        raise InvalidInput("Credentials are a mapping of named values.")
    with transaction.atomic():
        connection = Connection.objects.select_for_update().get(pk=connection.pk)
        credentials = dict(connection.credentials or {})
        for key, value in values.items():
            if value is None:
                credentials.pop(key, None)
            else:
                credentials[key] = value
        connection.credentials = credentials
        fields = ["credentials", "updated"]
        if connection.status == Connection.Status.NEEDS_REAUTH:
            connection.status, connection.last_error = Connection.Status.OK, ""
            fields += ["status", "last_error"]
        connection.save(update_fields=fields)
        audit_record(
            actor=actor,
            action="integrations.connection.credentials_set",
            target=connection,
            details={"names": sorted(values), "removed": sorted(k for k, v in values.items() if v is None)},
        )
    return connection


def connection_request_sync(*, actor: Any | None, connection: Connection, reason: str = "requested") -> None:
    """Ask for an early sync (a person, a webhook): audited, and sent to a worker once committed."""
    from .tasks import connection_sync_task

    with transaction.atomic():
        # One pending early sync per connection: if one is queued and has not started, it will see this
        # change too. (A request lost with its task is cleared by the next scheduled sync.)
        queued = Connection.objects.filter(pk=connection.pk, sync_requested_at__isnull=True).update(
            sync_requested_at=timezone.now()
        )
        audit_record(
            actor=actor,
            action="integrations.connection.sync_requested",
            target=connection,
            details={"reason": reason, "joined_pending": not queued},
        )
        if queued:
            connection_id = connection.pk
            transaction.on_commit(lambda: connection_sync_task.delay(connection_id))


# --- write queue drain ----------------------------------------------------------------------------

#: How long a worker may hold a claimed job before another worker may take it (a crash mid-send). Longer
#: than a batch of pushes can take; the deterministic event id makes a resend after expiry converge.
WRITE_LEASE = timedelta(minutes=10)
WRITE_BATCH = 10
WRITE_MAX_ATTEMPTS = 8
WRITE_BACKOFF_BASE = 30.0  # seconds; doubles per attempt
WRITE_BACKOFF_CAP = 3600.0
_ACTIVE = (APIWriteQueue.Status.PENDING, APIWriteQueue.Status.FAILED, APIWriteQueue.Status.IN_FLIGHT)


@dataclass
class DrainCounts:
    sent: int = 0
    retrying: int = 0
    dead: int = 0
    waiting: int = 0  # claimed but put back unsent: rate limited, or the credentials need a human

    def __iadd__(self, other: DrainCounts) -> DrainCounts:
        for name in ("sent", "retrying", "dead", "waiting"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self


def _due(now: datetime) -> Q:
    return Q(
        status__in=[APIWriteQueue.Status.PENDING, APIWriteQueue.Status.FAILED], next_attempt_at__lte=now
    ) | Q(status=APIWriteQueue.Status.IN_FLIGHT, claimed_until__lte=now)


def write_backoff(attempts: int, retry_after: float | None, rng: random.Random | None = None) -> timedelta:
    """When to try again: exponential with jitter (half the ceiling fixed, half random, so jobs that failed
    together spread out but none comes back at once); never sooner than the platform's Retry-After."""
    rng = rng or random.Random()
    ceiling = min(WRITE_BACKOFF_CAP, WRITE_BACKOFF_BASE * 2 ** max(0, attempts - 1))
    delay = rng.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        retry_after = max(0.0, float(retry_after))
        delay = retry_after + rng.uniform(0, 1 + retry_after / 10)
    return timedelta(seconds=delay)


def _write_budget(connection: Connection, connector: type[Any]) -> int:
    try:
        return int((connection.config or {}).get("write_rate_per_minute", connector.write_rate_per_minute))
    except (TypeError, ValueError):
        return connector.write_rate_per_minute


def write_queue_claim(*, connection_id: int, limit: int = WRITE_BATCH) -> list[APIWriteQueue]:
    """Claim up to ``limit`` due jobs of one connection for this worker, within its rate budget.

    The connection row is locked (SKIP LOCKED: a worker already claiming for it is not waited for), so
    the budget check and the claim are one step across workers; the jobs themselves are taken FOR UPDATE
    SKIP LOCKED and leased. Only the oldest unfinished job of each appointment is due: an update never
    overtakes its create. On SQLite, IMMEDIATE transactions serialise claims instead.
    """
    from .registry import connector_class

    now = timezone.now()
    with transaction.atomic():
        connection = Connection.objects.select_for_update(skip_locked=True).filter(pk=connection_id).first()
        if connection is None or connection.status in (
            Connection.Status.PAUSED,
            Connection.Status.NEEDS_REAUTH,
        ):
            return []  # claimed by another worker right now, gone, or waiting for a human
        try:
            connector = connector_class(connection.platform)
        except LookupError:
            return []
        spent = APIWriteQueue.objects.filter(
            connection=connection, last_attempt_at__gt=now - timedelta(minutes=1)
        ).count()
        budget = min(limit, _write_budget(connection, connector) - spent)
        if budget <= 0:
            return []
        earlier = APIWriteQueue.objects.filter(
            connection_id=OuterRef("connection_id"),
            appointment_id=OuterRef("appointment_id"),
            status__in=_ACTIVE,
            pk__lt=OuterRef("pk"),
        )
        jobs = list(
            APIWriteQueue.objects.select_for_update(skip_locked=True)
            .filter(_due(now), connection=connection)
            .exclude(Exists(earlier))
            .order_by("pk")[:budget]
        )
        if not jobs:
            return []
        APIWriteQueue.objects.filter(pk__in=[j.pk for j in jobs]).update(
            status=APIWriteQueue.Status.IN_FLIGHT,
            claimed_until=now + WRITE_LEASE,
            last_attempt_at=now,
            attempts=F("attempts") + 1,
            updated=now,
        )
    for job in jobs:
        job.status, job.claimed_until, job.last_attempt_at = (
            APIWriteQueue.Status.IN_FLIGHT,
            now + WRITE_LEASE,
            now,
        )
        job.attempts += 1
        job.connection = connection
    return jobs


def _write_job_finish(job: APIWriteQueue, action: str, details: dict[str, Any], **changes: Any) -> bool:
    """Move a job we hold (in flight, our lease) to its outcome, audited. False if it is no longer ours."""
    now = timezone.now()
    with transaction.atomic():
        updated = APIWriteQueue.objects.filter(
            pk=job.pk, status=APIWriteQueue.Status.IN_FLIGHT, claimed_until=job.claimed_until
        ).update(claimed_until=None, updated=now, **changes)
        if not updated:
            return False  # the lease ran out and another worker took it over: its outcome stands
        for name, value in changes.items():
            setattr(job, name, value)
        job.claimed_until = None
        audit_record(
            actor=None,
            action=action,
            target=job,
            details={
                "appointment_id": job.appointment_id,
                "connection_id": job.connection_id,
                "operation": job.operation,
                "attempts": job.attempts,
                **details,
            },
        )
        if action == "integrations.write.sent":
            _write_ledger(job, now)
    return True


def _write_ledger(job: APIWriteQueue, now: datetime) -> None:
    """The ledger learns which external event is the appointment, so reading it back is recognised."""
    if not job.external_id:
        return
    if job.operation == APIWriteQueue.Operation.DELETE:
        ExternalRecord.objects.filter(connection_id=job.connection_id, external_id=job.external_id).update(
            tombstone_reason="deleted by the hub", last_seen_at=now
        )
        return
    ExternalRecord.objects.update_or_create(
        connection_id=job.connection_id,
        external_id=job.external_id,
        recurrence_id="",
        defaults={
            "appointment_id": job.appointment_id,
            "version": str(job.payload.get("version", "")),
            "last_seen_at": now,
            "tombstone_reason": "",
        },
    )


def _write_jobs_release(jobs: list[APIWriteQueue], *, until: datetime, reason: str) -> int:
    """Put claimed jobs back unsent, without counting an attempt (rate limit, credentials refused)."""
    released = APIWriteQueue.objects.filter(
        pk__in=[j.pk for j in jobs], status=APIWriteQueue.Status.IN_FLIGHT
    ).update(
        status=APIWriteQueue.Status.PENDING,
        claimed_until=None,
        next_attempt_at=until,
        attempts=F("attempts") - 1,
        last_error=reason,
        updated=timezone.now(),
    )
    return released


def _write_send(connection: Connection, jobs: list[APIWriteQueue]) -> DrainCounts:
    from .registry import connector_class

    counts = DrainCounts()
    connector = connector_class(connection.platform)(connection)
    try:
        _write_send_batch(connection, connector, jobs, counts)
    finally:
        _store_refreshed_tokens(connection, connector)
    return counts


def _write_send_batch(
    connection: Connection, connector: Any, jobs: list[APIWriteQueue], counts: DrainCounts
) -> None:
    for i, job in enumerate(jobs):
        try:
            result = connector.push(job)
        except ConnectorAuthError as exc:
            # Nothing more can go out until a human re-authorises; the queue waits, attempts uncounted.
            counts.waiting += _write_jobs_release(jobs[i:], until=timezone.now(), reason=exc.message)
            _connection_needs_reauth(connection, exc.message)
            break
        except ConnectorError as exc:
            if exc.permanent or job.attempts >= WRITE_MAX_ATTEMPTS:
                why = (
                    exc.message if exc.permanent else f"gave up after {job.attempts} attempts: {exc.message}"
                )
                counts.dead += _write_job_finish(
                    job,
                    "integrations.write.dead",
                    {"error": why},
                    status=APIWriteQueue.Status.DEAD,
                    last_error=why,
                )
                continue
            retry_at = timezone.now() + write_backoff(job.attempts, exc.retry_after)
            counts.retrying += _write_job_finish(
                job,
                "integrations.write.retry_scheduled",
                {"error": exc.message, "retry_at": retry_at.isoformat()},
                status=APIWriteQueue.Status.FAILED,
                next_attempt_at=retry_at,
                last_error=exc.message,
            )
            if exc.retry_after is not None:
                # The platform asked this connection to slow down: the rest of the batch waits as long.
                counts.waiting += _write_jobs_release(jobs[i + 1 :], until=retry_at, reason=exc.message)
                break
        else:
            counts.sent += _write_job_finish(
                job,
                "integrations.write.sent",
                {"external_id": result.external_id},
                status=APIWriteQueue.Status.DONE,
                sent_at=timezone.now(),
                external_id=result.external_id,
                last_error="",
            )


def _connection_needs_reauth(connection: Connection, message: str) -> None:
    with transaction.atomic():
        Connection.objects.filter(pk=connection.pk).update(
            status=Connection.Status.NEEDS_REAUTH, last_error=message, updated=timezone.now()
        )
        audit_record(
            actor=None,
            action="integrations.connection.needs_reauth",
            target=connection,
            details={"error": message},
        )
    connection.status = Connection.Status.NEEDS_REAUTH
    connection_schedule(connection=connection)


def write_queue_drain(*, time_limit: float = 50.0, batch_size: int = WRITE_BATCH) -> DrainCounts:
    """Send what is due, connection by connection in small batches within each one's rate budget, until
    nothing due can be claimed or ``time_limit`` seconds have passed (the beat task runs every minute).

    Safe to run in any number of workers at once: each job is claimed by exactly one of them.
    """
    started = time.monotonic()
    total = DrainCounts()
    while time.monotonic() - started < time_limit:
        progressed = False
        now = timezone.now()
        connection_ids = list(
            APIWriteQueue.objects.filter(_due(now))
            .order_by()
            .values_list("connection_id", flat=True)
            .distinct()
        )
        for connection_id in connection_ids:
            jobs = write_queue_claim(connection_id=connection_id, limit=batch_size)
            if jobs:
                progressed = True
                total += _write_send(jobs[0].connection, jobs)
        if not progressed:
            break
    return total


def write_jobs_retry(*, actor: Any, jobs: Any) -> int:
    """Staff: send dead (or backing-off) jobs again now, from a fresh attempt count. Audited."""
    retried = 0
    with transaction.atomic():
        for job in jobs.select_for_update().filter(
            status__in=[APIWriteQueue.Status.DEAD, APIWriteQueue.Status.FAILED]
        ):
            job.status, job.attempts, job.next_attempt_at = APIWriteQueue.Status.PENDING, 0, timezone.now()
            job.save(update_fields=["status", "attempts", "next_attempt_at", "updated"])
            audit_record(
                actor=actor,
                action="integrations.write.retry_requested",
                target=job,
                details={"appointment_id": job.appointment_id, "last_error": job.last_error[:500]},
            )
            retried += 1
    return retried


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
    """Apply the hub's own events of ``result`` (the rule above); return the rest for sync_apply.

    Busy time (``busy_only``) stays in the batch: sync_apply's bulk path stores it as BusyBlocks
    (`_busy_apply`). An event that carries our marker but turns out not to be ours (an unknown uid,
    another therapist's appointment) is returned as busy time.
    """
    from dataclasses import replace

    # Calendar events only (busy time, or marked as ours); a tombstone of our own event arrives as busy time
    # without the marker (Google's minimal cancelled events), and the ledger recognises it.
    candidates = [e for e in result.events if e.hub_uid or e.busy_only]
    if not candidates:
        return result
    with transaction.atomic():
        ledger: dict[str, ExternalRecord] = {}
        for chunk in _chunks(list({e.external_id for e in candidates})):
            for rec in (
                ExternalRecord.objects.filter(connection=connection, external_id__in=chunk, recurrence_id="")
                .select_related("appointment")
                .defer("appointment__raw")  # never read here; it would be decrypted row by row
            ):
                ledger[rec.external_id] = rec

        def ours(event: ExternalEvent) -> bool:
            if event.hub_uid:
                return True
            rec = ledger.get(event.external_id)
            # Written by the write queue: the ledger links it to a hub appointment from elsewhere.
            return (
                rec is not None
                and rec.appointment is not None
                and rec.appointment.connection_id != connection.pk
                and rec.busy_block_id is None
            )

        own = [e for e in candidates if ours(e)]
        if not own:
            return result
        not_ours = own_events_apply(connection=connection, events=own, ledger=ledger, counts=counts)
    own_ids = {id(e) for e in own}
    rest = [e for e in result.events if id(e) not in own_ids]
    rest += [replace(e, busy_only=True, hub_uid="") for e in not_ours]
    return replace(result, events=rest)


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
