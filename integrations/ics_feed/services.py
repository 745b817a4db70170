"""Writes for .ics import: uploads (a file, once) and subscriptions (a feed URL, polled).

Both end in integrations.services.sync_apply with a Connection, so the ledger (identity = UID +
RECURRENCE-ID), idempotence, authoritative-deletion rules and conflict detection are the sync path's own.

* An **upload** goes through the therapist's "Uploaded .ics" connection (platform ``ics_feed``, paused so
  beat never polls it). A file is *not* complete by definition — people upload a week, a month, an
  export of one calendar among several — so what it lacks is left alone; only what it marks cancelled
  (or free) is cancelled. Re-importing the same file changes nothing.
* A **subscription** is a Connection with the feed URL in its (encrypted) credentials, read by the
  ``ics_feed`` / ``simplepractice`` connector on its own schedule; a feed *is* complete, so an event gone
  from it within the window is cancelled, audited by the sync run.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from audit.services import audit_record
from lib.errors import InvalidInput
from scheduler.models import IcsImport, SourceSystem, Therapist

from ..base import FetchResult
from ..models import Connection
from ..services import SyncCounts, connection_schedule, sync_apply
from .connector import occurrences_to_events
from .parse import IcsError, check_size, parse_calendar


def import_window(
    zone: str, start: date | None, end: date | None, *, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """Whole local days in the therapist's zone; the defaults come from ICS_IMPORT_WINDOW_*_DAYS."""
    today = (now or timezone.now()).astimezone(ZoneInfo(zone)).date()
    start = start or today - timedelta(days=settings.ICS_IMPORT_WINDOW_PAST_DAYS)
    end = end or today + timedelta(days=settings.ICS_IMPORT_WINDOW_FUTURE_DAYS)
    if not (date(1970, 1, 1) <= start <= end <= date(2200, 12, 31)):
        raise InvalidInput("The window runs from its first to its last day, between 1970 and 2200.")
    tz = ZoneInfo(zone)
    # --window-end is the last day imported, inclusive.
    return datetime.combine(start, time(), tzinfo=tz).astimezone(UTC), datetime.combine(
        end + timedelta(days=1), time(), tzinfo=tz
    ).astimezone(UTC)


UPLOAD_DISPLAY_NAME = "Uploaded .ics"
APPLY_CHUNK = 2000


@dataclass
class IcsImportResult:
    events: int = 0  # VEVENTs in the file
    occurrences: int = 0  # occurrences in the window, after expansion
    series: int = 0
    skipped_own: int = 0
    created: int = 0
    updated: int = 0
    cancelled: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)
    # What was accepted leniently (a duplicate UID, a malformed RRULE ignored): lines and UIDs, no values.
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["errors"] = data["errors"][:100]
        data["warnings"] = data["warnings"][:100]
        return data


def ics_upload_connection(*, therapist: Therapist) -> Connection:
    """The therapist's upload connection, created (paused, never polled) on first use."""
    connection = Connection.objects.filter(
        therapist=therapist, platform=SourceSystem.ICS_FEED, config__upload=True
    ).first()
    if connection is None:
        connection = Connection.objects.create(
            therapist=therapist,
            platform=SourceSystem.ICS_FEED,
            display_name=UPLOAD_DISPLAY_NAME,
            status=Connection.Status.PAUSED,
            config={"upload": True},
        )
        audit_record(
            actor=None,
            action="integrations.connection.created",
            target=connection,
            details={"platform": connection.platform, "upload": True},
        )
    return connection


def ics_import_apply(
    *,
    actor: Any | None,
    therapist: Therapist,
    data: bytes,
    window: tuple[datetime, datetime],
    as_busy: bool = False,
    max_bytes: int | None = None,
    filename: str = "",
    progress: Callable[[int, str], None] | None = None,
) -> IcsImportResult:
    """Validate and expand the whole file first (refused as a whole: InvalidInput naming what and where,
    nothing written), outside any transaction; then apply it in chunks through sync_apply inside one
    transaction, so a failure part-way leaves nothing behind. The expansion limits bound that transaction.
    ``progress(percent, stage)`` is told before and after the apply (never inside its transaction, where
    it would stay invisible)."""
    lo, hi = window
    if not lo < hi:
        raise InvalidInput("The import window must end after it starts.")
    report = progress or (lambda percent, stage: None)
    report(5, "parsing")
    try:
        parsed = parse_calendar(data, window=window, default_zone=therapist.timezone, max_bytes=max_bytes)
    except IcsError as exc:
        # The message names lines, properties and UIDs, never a value from the file (it may be a patient's).
        raise InvalidInput(f"The .ics file was refused: {exc.message}", details={"line": exc.line}) from None
    events = occurrences_to_events(parsed, platform=SourceSystem.ICS_FEED, as_busy=as_busy)
    result = IcsImportResult(
        events=parsed.events,
        occurrences=len(parsed.occurrences),
        series=parsed.series,
        skipped_own=parsed.skipped_own,
        warnings=list(parsed.warnings),
    )
    report(40, "applying")
    # In time order, so that each chunk touches one stretch of the calendar and its conflict detection reads
    # that stretch only (a chunk spanning the whole window would re-read all of it every time).
    events.sort(key=lambda e: e.start or lo)
    with transaction.atomic():
        connection = ics_upload_connection(therapist=therapist)
        for start in range(0, len(events), APPLY_CHUNK):
            chunk = events[start : start + APPLY_CHUNK]
            counts: SyncCounts = sync_apply(connection=connection, result=FetchResult(chunk))
            for name in ("created", "updated", "cancelled", "unchanged"):
                setattr(result, name, getattr(result, name) + getattr(counts, name))
            result.errors.extend(counts.errors)
        audit_record(
            actor=actor,
            action="integrations.ics.imported",
            target=therapist,
            details={  # never the filename: people name files after patients
                "connection_id": connection.pk,
                "bytes": len(data),
                "as_busy": as_busy,
                "window": [lo.isoformat(), hi.isoformat()],
                **{k: v for k, v in result.as_dict().items() if k not in ("errors", "warnings")},
                "errors": len(result.errors),
                "warnings": len(result.warnings),
            },
        )
    report(100, "done")
    return result


def ics_feed_subscribe(
    *,
    actor: Any | None,
    therapist: Therapist,
    url: str,
    platform: str = SourceSystem.ICS_FEED,
    display_name: str = "",
    as_busy: bool = False,
    sync_interval_minutes: int = 15,
) -> Connection:
    """Subscribe the therapist to a feed URL (stored encrypted), polled on the connection's own schedule."""
    if platform not in (SourceSystem.ICS_FEED, SourceSystem.SIMPLEPRACTICE):
        raise InvalidInput(f"{platform!r} is not a feed platform (ics_feed or simplepractice).")
    if not url.startswith(("https://", "http://", "webcal://")):
        raise InvalidInput("The feed URL must start with https://, http:// or webcal://.")
    url = "https://" + url.removeprefix("webcal://") if url.startswith("webcal://") else url
    with transaction.atomic():
        connection = Connection.objects.create(
            therapist=therapist,
            platform=platform,
            display_name=display_name or f"{SourceSystem(platform).label} feed",
            credentials={"url": url},
            config={"as_busy": as_busy},
            sync_interval_minutes=sync_interval_minutes,
        )
        audit_record(
            actor=actor,
            action="integrations.connection.created",
            target=connection,
            details={"platform": platform, "as_busy": as_busy, "therapist_id": therapist.pk},
        )
        connection_schedule(connection=connection)
    return connection


# --- import jobs (uploads through the API and the admin) ----------------------------------------------


def ics_import_submit(
    *,
    actor: Any | None,
    therapist: Therapist,
    data: bytes,
    window: tuple[datetime, datetime],
    as_busy: bool = False,
    filename: str = "",
) -> IcsImport:
    """Record an upload as an IcsImport job. Small files run at once (inside the caller's request); larger
    ones (over ICS_IMPORT_BACKGROUND_BYTES) run in a worker, with progress on the job. Over
    ICS_IMPORT_MAX_BYTES is refused outright."""
    try:
        check_size(len(data), settings.ICS_IMPORT_MAX_BYTES)
    except IcsError as exc:
        raise InvalidInput(exc.message) from None
    if not window[0] < window[1]:
        raise InvalidInput("The import window must end after it starts.")
    with transaction.atomic():
        job = IcsImport.objects.create(
            therapist=therapist,
            created_by=actor if getattr(actor, "pk", None) else None,
            filename=filename[:255],
            size=len(data),
            as_busy=as_busy,
            window_start=window[0],
            window_end=window[1],
            # The file's titles name patients: kept encrypted, and only until the job has run.
            data=base64.b64encode(data).decode("ascii"),
        )
        audit_record(
            actor=actor,
            action="integrations.ics.import_submitted",
            target=job,
            details={"therapist_id": therapist.pk, "bytes": len(data), "as_busy": as_busy},
        )
        background = len(data) > settings.ICS_IMPORT_BACKGROUND_BYTES
        if background:
            from integrations.tasks import ics_import_task

            job_id = job.pk
            transaction.on_commit(lambda: ics_import_task.delay(job_id))
    if not background:
        job = ics_import_run(import_id=job.pk)
    return job


def ics_import_run(*, import_id: int) -> IcsImport:
    """Run one import job (a worker, or inline for a small file). Safe to redeliver: a finished job is left
    as it is, and re-applying a file changes nothing anyway."""
    with transaction.atomic():
        job = (
            IcsImport.objects.select_for_update(of=("self",))
            .select_related("therapist", "created_by")
            .get(pk=import_id)
        )
        if job.status in (IcsImport.Status.DONE, IcsImport.Status.FAILED) or not job.data:
            return job
        now = timezone.now()
        job.status, job.started_at, job.progress_at, job.stage, job.progress = (
            IcsImport.Status.RUNNING,
            now,
            now,
            "parsing",
            1,
        )
        job.attempts += 1
        job.save(update_fields=["status", "started_at", "progress_at", "stage", "progress", "attempts"])

    def progress(percent: int, stage: str) -> None:
        IcsImport.objects.filter(pk=import_id, status=IcsImport.Status.RUNNING).update(
            progress=min(percent, 99), stage=stage, progress_at=timezone.now()
        )

    try:
        result = ics_import_apply(
            actor=job.created_by,
            therapist=job.therapist,
            data=base64.b64decode(job.data),
            window=(job.window_start, job.window_end),
            as_busy=job.as_busy,
            max_bytes=settings.ICS_IMPORT_MAX_BYTES,
            filename=job.filename,
            progress=progress,
        )
    except InvalidInput as exc:  # the file is refused: retrying it cannot help, so it is not kept
        job.status, job.error, job.counts = (
            IcsImport.Status.FAILED,
            exc.message,
            {"line": exc.details.get("line")},
        )
    except Exception as exc:  # recorded on the job for staff (the file kept to retry), re-raised for the log
        _finish(
            job,
            IcsImport.Status.FAILED,
            error=f"The import failed unexpectedly ({type(exc).__name__}); it can be retried.",
            keep_file=True,
        )
        raise
    else:
        job.status, job.counts, job.error = IcsImport.Status.DONE, result.as_dict(), ""
    _finish(job, job.status, error=job.error)
    return job


def _finish(job: IcsImport, status: str, *, error: str = "", keep_file: bool = False) -> None:
    job.status, job.error, job.finished_at = status, error, timezone.now()
    if not keep_file:
        job.data = ""  # the file is not kept once it has been read
    if status == IcsImport.Status.DONE:
        job.progress, job.stage = 100, "done"
    else:
        job.stage = "failed"
    job.save(update_fields=["status", "error", "counts", "finished_at", "data", "progress", "stage"])


STALE_ERROR = (
    "The import stopped: no progress for {minutes} minutes (its worker probably died). Nothing of it was "
    "applied; retry it."
)


def _stale_jobs(now: datetime) -> Any:
    cutoff = now - timedelta(minutes=settings.ICS_IMPORT_STALE_MINUTES)
    return IcsImport.objects.filter(status__in=(IcsImport.Status.QUEUED, IcsImport.Status.RUNNING)).filter(
        models.Q(progress_at__lt=cutoff)
        | models.Q(progress_at__isnull=True, started_at__lt=cutoff)
        | models.Q(progress_at__isnull=True, started_at__isnull=True, created__lt=cutoff)
    )


def ics_import_reap_stale(*, now: datetime | None = None, import_id: int | None = None) -> list[int]:
    """Fail, visibly, the jobs with no progress for ICS_IMPORT_STALE_MINUTES (a worker that died mid-way; the
    apply is one transaction, so nothing of them was written), keeping their file so they can be retried;
    and forget the file of failed jobs not retried within ICS_IMPORT_RETRY_HOURS. Beat runs it
    (``ics_import_reap_stale``); reading a job through the API runs it for that job."""
    now = now or timezone.now()
    reaped: list[int] = []
    with transaction.atomic():
        jobs = _stale_jobs(now).select_for_update()
        if import_id is not None:
            jobs = jobs.filter(pk=import_id)
        for job in jobs:
            job.status, job.stage, job.finished_at = IcsImport.Status.FAILED, "failed", now
            job.error = STALE_ERROR.format(minutes=settings.ICS_IMPORT_STALE_MINUTES)
            job.save(update_fields=["status", "stage", "finished_at", "error"])
            audit_record(
                actor=None,
                action="integrations.ics.import_stale",
                target=job,
                details={"therapist_id": job.therapist_id, "attempts": job.attempts},
            )
            reaped.append(job.pk)
        if import_id is None:
            expired = IcsImport.objects.filter(
                status=IcsImport.Status.FAILED,
                finished_at__lt=now - timedelta(hours=settings.ICS_IMPORT_RETRY_HOURS),
            ).only("pk", "data")
            IcsImport.objects.filter(pk__in=[j.pk for j in expired if j.data]).update(data="")
    return reaped


def ics_import_retry(*, actor: Any | None, import_id: int) -> IcsImport:
    """Run a failed job again from its kept file (a job refused for its content, or whose file was
    forgotten after ICS_IMPORT_RETRY_HOURS, cannot be: upload the file again)."""
    with transaction.atomic():
        job = IcsImport.objects.select_for_update().get(pk=import_id)
        if job.status != IcsImport.Status.FAILED:
            raise InvalidInput(f"Import {job.pk} is {job.status}; only a failed import can be retried.")
        if not job.data:
            raise InvalidInput(
                f"Import {job.pk} cannot be retried: its file is no longer kept (a refused file, or one "
                "failed over ICS_IMPORT_RETRY_HOURS ago). Upload it again."
            )
        job.status, job.stage, job.progress, job.error = IcsImport.Status.QUEUED, "", 0, ""
        job.started_at = job.progress_at = job.finished_at = None
        job.counts = {}
        job.save(
            update_fields=["status", "stage", "progress", "error", "started_at", "progress_at", "finished_at"]
            + ["counts"]
        )
        audit_record(
            actor=actor,
            action="integrations.ics.import_retried",
            target=job,
            details={"therapist_id": job.therapist_id, "attempts": job.attempts},
        )
        background = job.size > settings.ICS_IMPORT_BACKGROUND_BYTES
        if background:
            from integrations.tasks import ics_import_task

            job_id = job.pk
            transaction.on_commit(lambda: ics_import_task.delay(job_id))
    if not background:
        try:
            job = ics_import_run(import_id=job.pk)
        except Exception:  # recorded on the job by ics_import_run; the caller reads it there
            job.refresh_from_db()
    return job
