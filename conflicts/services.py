"""Run the pure engine over the database and persist its findings as Conflict rows, idempotently."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import TextField
from django.db.models.functions import Cast
from django.utils import timezone

from audit.services import audit_record
from lib.errors import Forbidden, InvalidInput
from scheduler.models import (
    BUFFER_PAD,
    MAX_APPOINTMENT_LENGTH,
    OCCUPYING_STATUSES,
    Appointment,
    BusyBlock,
    Service,
    Therapist,
    TimeOff,
)

from .engine import Block, Finding, Slot, WorkingWeek, detect_all, parse_working_hours
from .models import Conflict, ConflictKind

AUTO_CLOSED = "no_longer_applies"


@dataclass(frozen=True)
class DetectResult:
    opened: list[int]
    closed: list[int]
    findings: int


def _weeks(therapist_ids: Iterable[int], start: datetime, end: datetime) -> dict[int, WorkingWeek]:
    """Working rules per therapist; a therapist with no hours configured has no rules (no findings)."""
    off: dict[int, list[tuple[datetime, datetime]]] = {}
    for t in TimeOff.objects.filter(therapist_id__in=therapist_ids, start__lt=end, end__gt=start):
        off.setdefault(t.therapist_id, []).append((t.start, t.end))
    return {
        t.pk: WorkingWeek(
            tz=ZoneInfo(t.timezone),
            hours=parse_working_hours(t.working_hours),
            time_off=tuple(off.get(t.pk, ())),
        )
        for t in Therapist.objects.filter(pk__in=therapist_ids)
        if t.working_hours
    }


def _service_buffers() -> dict[int, tuple[timedelta, timedelta]]:
    """Each service's (buffer before, buffer after), for building engine slots from raw rows."""
    return {
        s.pk: (timedelta(minutes=s.buffer_before_minutes), timedelta(minutes=s.buffer_after_minutes))
        for s in Service.objects.all()
    }


def conflicts_detect(*, therapist_ids: Iterable[int], start: datetime, end: datetime) -> DetectResult:
    """Detect every kind for these therapists around [start, end); open new findings, close vanished ones.

    Runs inside the caller's transaction when there is one (write paths), else in its own.
    """
    therapist_ids = sorted(set(therapist_ids))
    buffers = _service_buffers()
    pad = BUFFER_PAD
    occupying = Appointment.objects.filter(status__in=OCCUPYING_STATUSES)
    fields = ("pk", "therapist_id", "start", "end", "service_id", "patient_ref", "source_system")

    def load(qs: Any) -> list[Slot]:
        # Tuples, not model instances: this runs on every write path and for every synced page.
        zero = (timedelta(0), timedelta(0))
        return [
            Slot(
                id=pk,
                therapist_id=t,
                start=s,
                end=e,
                buffer_before=buffers.get(svc, zero)[0],
                buffer_after=buffers.get(svc, zero)[1],
                patient_ref=ref,
                source_system=src,
            )
            for pk, t, s, e, svc, ref, src in qs.order_by().values_list(*fields)  # the engine sorts
        ]

    mine_qs = occupying.filter(therapist_id__in=therapist_ids)

    def window(lo: datetime, hi: datetime) -> Any:
        # The lower bound on start keeps the (therapist, start) index scan to the window, not all history.
        return mine_qs.filter(
            start__lt=hi + pad, end__gt=lo - pad, start__gt=lo - pad - MAX_APPOINTMENT_LENGTH
        )

    mine = load(window(start, end))
    if mine:
        # Widen once to the extent of what was found, so a long appointment's partners are all loaded.
        # Only needed when one reaches past the padded range: partners of the others are already loaded.
        wide_start, wide_end = min(start, *(a.start for a in mine)), max(end, *(a.end for a in mine))
        if wide_start < start - pad or wide_end > end + pad:
            start, end = wide_start, wide_end
            mine = load(window(start, end))
    refs = {a.patient_ref for a in mine if a.patient_ref}
    same_patient = (
        load(
            occupying.filter(patient_ref__in=refs, start__lt=end, end__gt=start).exclude(
                therapist_id__in=therapist_ids
            )
        )
        if refs
        else []
    )
    blocks = [
        Block(id=pk, therapist_id=t, start=s, end=e)
        for pk, t, s, e in BusyBlock.objects.filter(
            therapist_id__in=therapist_ids, start__lt=end + pad, end__gt=start - pad
        ).values_list("pk", "therapist_id", "start", "end")
    ]
    slots = [*mine, *same_patient]
    # _persist keeps only findings that involve an examined appointment: those among other therapists'
    # appointments alone belong to their own detection runs.
    findings = detect_all(slots, blocks, _weeks(therapist_ids, start - pad, end + pad))
    with transaction.atomic():
        return _persist(findings, {a.id for a in mine})


def _persist(findings: list[Finding], scope: set[int] | None) -> DetectResult:
    """Open what is new, keep what is still open, close open conflicts in scope that no longer hold.

    `scope` is the set of appointment ids that were fully examined; None means everything (full scan).
    """
    if scope is not None:
        findings = [f for f in findings if scope.intersection(f.appointment_ids)]
    open_qs = Conflict.objects.filter(status=Conflict.Status.OPEN)
    settled_qs = Conflict.objects.filter(resolution__in=STAFF_CLOSED)
    if scope is not None:
        open_qs = open_qs.filter(appointments__in=scope).distinct()
        settled_qs = settled_qs.filter(appointments__in=scope).distinct()
    open_by_fp = dict(open_qs.values_list("fingerprint", "pk"))
    settled = set(settled_qs.values_list("fingerprint", "start", "end"))
    found = {f.fingerprint: f for f in findings if (f.fingerprint, f.start, f.end) not in settled}

    new = [f for fp, f in found.items() if fp not in open_by_fp]
    created = Conflict.objects.bulk_create(
        [
            Conflict(
                kind=f.kind, fingerprint=f.fingerprint, therapist_id=f.therapist_id, start=f.start, end=f.end
            )
            for f in new
        ],
        batch_size=1000,
    )
    links = Conflict.appointments.through
    links.objects.bulk_create(
        [
            links(conflict_id=c.pk, appointment_id=a)
            for c, f in zip(created, new, strict=True)
            for a in f.appointment_ids
        ],
        batch_size=1000,
    )
    blocks = Conflict.busy_blocks.through
    blocks.objects.bulk_create(
        [
            blocks(conflict_id=c.pk, busyblock_id=b)
            for c, f in zip(created, new, strict=True)
            for b in f.busy_block_ids
        ],
        batch_size=1000,
    )
    closed = [pk for fp, pk in open_by_fp.items() if fp not in found]
    for i in range(0, len(closed), 500):
        Conflict.objects.filter(pk__in=closed[i : i + 500]).update(
            status=Conflict.Status.RESOLVED, resolution=AUTO_CLOSED, resolved_at=timezone.now()
        )
    opened = [c.pk for c in created]
    if opened or closed:
        # Ids only, capped: a first full scan may open thousands.
        audit_record(
            actor=None,
            action="conflicts.conflict.detected",
            target_type="conflicts.conflict",
            details={
                "opened": len(opened),
                "closed": len(closed),
                "opened_ids": opened[:200],
                "closed_ids": closed[:200],
            },
        )
    return DetectResult(opened=opened, closed=closed, findings=len(found))


@contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _raw_rows(qs: Any) -> Iterator[tuple[Any, ...]]:
    """The query's rows straight from the cursor, skipping Django's per-value converters (at 500k rows
    SQLite's datetime parsing alone costs seconds); datetimes are converted by _instant."""
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(10000):
            yield from rows


def _instant(value: Any) -> datetime:
    """An aware UTC datetime from a raw column or its text (SQLite: naive UTC; PostgreSQL: with an offset)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def scan_load(start: datetime | None = None, end: datetime | None = None) -> tuple[list[Slot], list[Block]]:
    """Every occupying appointment (optionally within a window) as engine slots, and the busy blocks.

    Reads plain tuples from the cursor rather than model instances; at 500k appointments that is most of
    the time saved. Call it with the cyclic GC paused (see conflicts_scan).
    """
    buffers = _service_buffers()
    zero = (timedelta(0), timedelta(0))
    qs = Appointment.objects.filter(status__in=OCCUPYING_STATUSES)
    blocks_qs = BusyBlock.objects.all()
    if start is not None:
        qs, blocks_qs = qs.filter(end__gt=start), blocks_qs.filter(end__gt=start)
    if end is not None:
        qs, blocks_qs = qs.filter(start__lt=end), blocks_qs.filter(start__lt=end)
    # The instants are read as text: both drivers would otherwise convert every value in Python (psycopg's
    # timestamptz loader, Django's SQLite converter), and appointments sit on a clock grid, so a year holds
    # only tens of thousands of distinct instants. Each distinct text is parsed once, the datetimes shared.
    qs = qs.annotate(start_text=Cast("start", TextField()), end_text=Cast("end", TextField()))
    fields = ("pk", "therapist_id", "start_text", "end_text", "service_id", "patient_ref", "source_system")
    instants: dict[Any, datetime] = {}

    def instant(raw: Any) -> datetime:
        value = instants.get(raw)
        if value is None:
            value = instants[raw] = _instant(raw)
        return value

    slots = [
        Slot(pk, t, instant(s), instant(e), *buffers.get(svc, zero), ref, src)
        for pk, t, s, e, svc, ref, src in _raw_rows(qs.order_by().values_list(*fields))
    ]
    blocks = [
        Block(id=pk, therapist_id=t, start=s, end=e)
        for pk, t, s, e in blocks_qs.values_list("pk", "therapist_id", "start", "end")
    ]
    return slots, blocks


def conflicts_scan(*, start: datetime | None = None, end: datetime | None = None) -> DetectResult:
    """Full scan: every therapist's occupying appointments (optionally within a window) in one engine pass."""
    # Hundreds of thousands of fresh objects would trigger the cyclic GC again and again while nothing
    # here can form a cycle; pausing it for the load and the engine pass saves about a second at 500k.
    with _gc_paused():
        slots, blocks = scan_load(start, end)
        lo = start or (min(s.start for s in slots) if slots else timezone.now())
        hi = end or (max(s.end for s in slots) if slots else timezone.now())
        therapist_ids = {s.therapist_id for s in slots}
        findings = detect_all(slots, blocks, _weeks(therapist_ids, lo, hi))
    scope = None if start is None and end is None else {s.id for s in slots}
    with transaction.atomic():
        return _persist(findings, scope)


def conflicts_detect_for_therapist(*, therapist_id: int, horizon_days: int = 365) -> DetectResult:
    """Re-evaluate a therapist's upcoming appointments (after working hours or time off change)."""
    now = timezone.now()
    return conflicts_detect(
        therapist_ids=[therapist_id], start=now - timedelta(days=1), end=now + timedelta(days=horizon_days)
    )


class Resolution:
    CANCEL = "cancel"
    RESCHEDULE = "reschedule"
    ACCEPT = "accept"
    MERGE = "merge"
    DISMISS = "dismiss"
    ALL = (CANCEL, RESCHEDULE, ACCEPT, MERGE, DISMISS)


# Findings staff decided to live with; re-detection does not reopen them while the clash is unchanged.
STAFF_CLOSED = (Resolution.ACCEPT, Resolution.DISMISS)


def conflict_resolve(
    *,
    actor: Any,
    conflict: Conflict,
    action: str,
    appointment: Appointment | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    note: str = "",
) -> Conflict:
    """Resolve an open conflict: cancel or reschedule one appointment, accept (with a reason), merge a
    duplicate (keep `appointment`), or dismiss. One transaction: if the conflict still holds after a
    cancel/reschedule/merge, nothing is changed and the reason is reported."""
    if not (getattr(actor, "is_active", False) and actor.has_perm("conflicts.change_conflict")):
        raise Forbidden("Only Admin and Front desk resolve conflicts.")
    if action not in Resolution.ALL:
        raise InvalidInput(f"Unknown resolution {action!r}; choose one of {', '.join(Resolution.ALL)}.")
    with transaction.atomic():
        conflict = Conflict.objects.select_for_update().get(pk=conflict.pk)
        if conflict.status != Conflict.Status.OPEN:
            raise InvalidInput(f"Conflict {conflict.pk} is already {conflict.status}.")
        involved = list(conflict.appointments.all())
        if action in (Resolution.CANCEL, Resolution.RESCHEDULE, Resolution.MERGE):
            if appointment is None or appointment.pk not in {a.pk for a in involved}:
                raise InvalidInput("Choose one of the appointments in this conflict.")
        if action == Resolution.ACCEPT and not note.strip():
            raise InvalidInput("Accepting a conflict needs a reason.")
        from scheduler import services as scheduling

        if action == Resolution.CANCEL:
            scheduling.appointment_cancel(actor=actor, appointment=appointment, reason=note)
        elif action == Resolution.RESCHEDULE:
            if start is None:
                raise InvalidInput("Rescheduling needs a new start time.")
            scheduling.appointment_reschedule(actor=actor, appointment=appointment, start=start, end=end)
        elif action == Resolution.MERGE:
            if conflict.kind != ConflictKind.DUPLICATE:
                raise InvalidInput("Only a duplicate can be merged.")
            (other,) = [a for a in involved if a.pk != appointment.pk]
            scheduling.appointment_merge(actor=actor, keep=appointment, duplicate=other)

        conflict.refresh_from_db()
        if action in (Resolution.CANCEL, Resolution.RESCHEDULE, Resolution.MERGE):
            if conflict.status == Conflict.Status.OPEN:
                raise InvalidInput(
                    f"After that change the {conflict.get_kind_display().lower()} still holds."
                )
        conflict.status = (
            Conflict.Status.DISMISSED if action == Resolution.DISMISS else Conflict.Status.RESOLVED
        )
        conflict.resolution = action
        conflict.resolved_by = actor
        conflict.resolved_at = timezone.now()
        conflict.note = note.strip()
        conflict.save(update_fields=["status", "resolution", "resolved_by", "resolved_at", "note"])
        audit_record(
            actor=actor,
            action="conflicts.conflict.resolved",
            target=conflict,
            details={
                "resolution": action,
                "appointment_id": appointment.pk if appointment else None,
                "kind": conflict.kind,
            },
        )
        # Re-run detection for everything the conflict touched (a cancel can also clear other findings).
        therapists = {a.therapist_id for a in involved}
        conflicts_detect(
            therapist_ids=therapists, start=min(a.start for a in involved), end=max(a.end for a in involved)
        )
    return conflict
