from __future__ import annotations

from celery import shared_task


@shared_task
def idempotency_keys_purge_task() -> int:
    """Hourly: delete Idempotency-Key records older than IDEMPOTENCY_KEY_TTL_HOURS."""
    from accounts.services import idempotency_keys_purge

    return idempotency_keys_purge()
