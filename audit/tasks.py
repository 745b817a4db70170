from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)
# The anchors' log stream: ship it somewhere the database's administrators cannot rewrite.
anchor_logger = logging.getLogger("hub.audit.anchor")


@shared_task
def audit_verify_task() -> bool:
    """Nightly: verify the chain (and the anchors, when AUDIT_ANCHOR_FILE is set); log loudly if broken."""
    from audit.selectors import audit_anchors_verify, audit_chain_verify, audit_triggers_missing

    report = audit_chain_verify()
    problems = [] if report.ok else [report.problem]
    problems += [f"append-only trigger missing: {name}" for name in audit_triggers_missing()]
    path = Path(settings.AUDIT_ANCHOR_FILE) if settings.AUDIT_ANCHOR_FILE else None
    if path is not None and path.is_file():
        problems += audit_anchors_verify(path, chain_end=report.last_seq).problems
    for problem in problems:
        logger.error("Audit chain broken: %s", problem)
    return not problems


@shared_task
def audit_anchor_task() -> dict[str, object] | None:
    """Every 10 minutes: publish the chain head (seq, hmac, key id, time) outside the database.

    Read-only and outside any transaction: one line to the `hub.audit.anchor` logger, and appended to
    AUDIT_ANCHOR_FILE when set (only when the head moved). Before appending, the previous anchor in the file
    is checked against the log, so a rewrite since then is logged as an error within one period."""
    from audit.models import AuditChainHead, AuditLog

    head = AuditChainHead.objects.filter(pk=1).first()
    if head is None:
        logger.error("Audit anchor: the chain head row is missing (tampering); nothing anchored.")
        return None
    key_id = AuditLog.objects.filter(seq=head.last_seq).values_list("key_id", flat=True).first() or ""
    anchor: dict[str, object] = {
        "seq": head.last_seq,
        "hmac": head.last_hash,
        "key_id": key_id,
        "at": timezone.now().isoformat(),
    }
    line = json.dumps(anchor, sort_keys=True)
    anchor_logger.info("audit anchor %s", line)
    if settings.AUDIT_ANCHOR_FILE:
        _append_anchor(Path(settings.AUDIT_ANCHOR_FILE), anchor, line)
    return anchor


def _append_anchor(path: Path, anchor: dict[str, object], line: str) -> None:
    from audit.models import AuditLog

    previous = _last_anchor(path)
    if previous is not None:
        stored = AuditLog.objects.filter(seq=previous["seq"]).values_list("hash", flat=True).first()
        if previous["seq"] > 0 and stored != previous["hmac"]:
            logger.error(
                "Audit anchor: entry #%s no longer matches the anchor of %s: history was rewritten or "
                "truncated.",
                previous["seq"],
                previous.get("at"),
            )
        if previous["seq"] == anchor["seq"] and previous["hmac"] == anchor["hmac"]:
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _last_anchor(path: Path) -> dict | None:
    """The file's last anchor, read from its tail (the file grows by one short line per head change)."""
    if not path.is_file():
        return None
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 4096))
        lines = [raw for raw in fh.read().splitlines() if raw.strip()]
    for raw in reversed(lines):
        try:
            anchor = json.loads(raw)
        except ValueError:
            continue
        if isinstance(anchor, dict) and isinstance(anchor.get("seq"), int):
            return anchor
    return None
