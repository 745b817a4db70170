from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def conflicts_detect_for_therapist_task(therapist_id: int) -> dict[str, list[int]]:
    """Re-run detection over a therapist's upcoming appointments; idempotent, safe to redeliver."""
    from conflicts.services import conflicts_detect_for_therapist

    result = conflicts_detect_for_therapist(therapist_id=therapist_id)
    return {"opened": result.opened, "closed": result.closed}


@shared_task(acks_late=True)
def conflicts_scan_task() -> dict[str, int]:
    """Nightly full scan (beat); catches anything a write path could not see, e.g. a time zone rule change."""
    from conflicts.services import conflicts_scan

    result = conflicts_scan()
    return {"findings": result.findings, "opened": len(result.opened), "closed": len(result.closed)}
