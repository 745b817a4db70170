from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task
def audit_verify_task() -> bool:
    """Nightly: verify the chain and log loudly if it is broken."""
    from audit.selectors import audit_chain_verify

    report = audit_chain_verify()
    if not report.ok:
        logger.error("Audit chain broken: %s", report.problem)
    return report.ok
