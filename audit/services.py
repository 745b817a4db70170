"""The one function every service calls to record an action, inside the service's transaction."""

from __future__ import annotations

import re
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from .context import current_ip
from .models import AuditChainHead, AuditLog

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
    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1)
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
        )
        entry.hash = entry.compute_hash()
        entry.save()
        AuditChainHead.objects.filter(pk=1).update(last_seq=entry.seq, last_hash=entry.hash)
    return entry
