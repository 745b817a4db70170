from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def connection_sync_task(connection_id: int) -> dict[str, object] | None:
    """One sync of one connection (beat per connection, webhooks, "Sync now"); safe to redeliver."""
    from integrations.services import connection_sync

    run = connection_sync(connection_id=connection_id)
    if run is None:
        return None
    return {"run": run.pk, "status": run.status, "created": run.created, "updated": run.updated}


@shared_task(acks_late=True)
def write_queue_drain_task() -> dict[str, int]:
    """Beat, every minute: send the due APIWriteQueue jobs. Any number may run at once (jobs are claimed)."""
    from integrations.services import write_queue_drain

    counts = write_queue_drain()
    return {"sent": counts.sent, "retrying": counts.retrying, "dead": counts.dead, "waiting": counts.waiting}


@shared_task(acks_late=True)
def google_channels_renew_task() -> list[int]:
    """Renew Google push channels before they expire (beat, every 30 minutes)."""
    from integrations.google.services import google_channels_renew

    return google_channels_renew()


@shared_task(acks_late=True)
def ics_import_task(import_id: int) -> dict[str, object]:
    """One uploaded .ics file, imported in the background with progress on its IcsImport row."""
    from integrations.ics_feed.services import ics_import_run

    job = ics_import_run(import_id=import_id)
    return {"import": job.pk, "status": job.status}


@shared_task(name="ics_import_reap_stale", acks_late=True)
def ics_import_reap_stale_task() -> list[int]:
    """Beat, every 5 minutes: fail the import jobs with no progress for ICS_IMPORT_STALE_MINUTES."""
    from integrations.ics_feed.services import ics_import_reap_stale

    return ics_import_reap_stale()
