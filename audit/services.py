"""The one function every service calls to record an action, inside the service's transaction."""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from .context import current_ip
from .models import GENESIS_HASH, AuditChainHead, AuditLog, AuditTampered, audit_current_key, entry_hash

RECOVERY = "run `manage.py audit_verify` and see docs/audit.md (Recovery)"

_SECRET_KEY_RE = re.compile(r"pass|secret|token|key|authorization|credential|cookie", re.IGNORECASE)
MASK = "***"


def mask_secrets(value: Any) -> Any:
    """Replace the values of secret-looking keys, at any depth."""
    if isinstance(value, dict):
        return {
            k: (MASK if _SECRET_KEY_RE.search(str(k)) and v not in (None, "") else mask_secrets(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_secrets(v) for v in value]
    return value


def audit_record(
    *,
    actor: Any | None,
    action: str,
    target: models.Model | None = None,
    details: dict[str, Any] | None = None,
    target_type: str = "",
    target_id: str | int = "",
) -> AuditLog:
    """Append one entry to the chain. `action` is `app.entity.event`; details must hold no PHI."""
    if action.count(".") < 2:
        raise ValueError(f"Audit action {action!r} must be named app.entity.event.")
    if target is not None:
        target_type = target._meta.label_lower
        target_id = target.pk
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    key_id, key = audit_current_key()
    with transaction.atomic():
        # Never re-create a missing head: a fresh head at #0 would restart the chain over history (and
        # collide on seq). Fail closed, loudly; the migration created it and a trigger keeps it.
        head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
        if head is None:
            raise AuditTampered(f"The audit chain head is missing; audited writes are refused: {RECOVERY}.")
        entry = AuditLog(
            seq=head.last_seq + 1,
            timestamp=timezone.now(),
            actor=user,
            actor_label=user.get_username() if user else "system",
            action=action,
            target_type=target_type,
            target_id=str(target_id),
            details=mask_secrets(details or {}),
            source_ip=current_ip.get(),
            prev_hash=head.last_hash,
            key_id=key_id,
        )
        entry.hash = entry.compute_hash(key)
        try:
            entry.save()
        except IntegrityError as exc:  # seq is the only unique column we set: the head was rewound
            raise AuditTampered(
                f"Audit entry #{entry.seq} already exists: the chain head was rewound; audited writes are "
                f"refused: {RECOVERY}."
            ) from exc
        AuditChainHead.objects.filter(pk=1).update(last_seq=entry.seq, last_hash=entry.hash)
    return entry


def audit_chain_genesis(log_model: type[models.Model], head_model: type[models.Model]) -> None:
    """Write the keyed entry that opens (or, after unkeyed legacy entries, seals) the chain.

    Shared by migration 0005 (historical models) and the test suite's flush; not for other use. With it,
    an empty log is never a valid state, and the legacy SHA-256 prefix is covered by a keyed MAC."""
    key_id, key = audit_current_key()
    head, _ = head_model.objects.get_or_create(pk=1, defaults={"last_seq": 0, "last_hash": GENESIS_HASH})
    if log_model.objects.exclude(key_id="sha256").exists():
        return
    fields = {
        "seq": head.last_seq + 1,
        "timestamp": timezone.now(),
        "actor_id": None,
        "actor_label": "system",
        "action": "audit.chain.keyed",
        "target_type": "audit.chain",
        "target_id": "",
        "details": {"legacy_entries": head.last_seq, "key_id": key_id},
        "source_ip": None,
        "prev_hash": head.last_hash,
    }
    mac = entry_hash(key=key, key_id=key_id, **{**fields, "timestamp": fields["timestamp"].isoformat()})
    log_model.objects.bulk_create([log_model(**fields, key_id=key_id, hash=mac)])
    head_model.objects.filter(pk=1).update(last_seq=fields["seq"], last_hash=mac)
