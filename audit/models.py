"""Append-only audit log, chained by HMAC-SHA256 (docs/audit.md).

Each entry's `hash` is an HMAC, under the key its `key_id` names (`AUDIT_HMAC_KEYS`), of its content and the
previous entry's hash; `AuditChainHead` holds the last position and hash. Writers lock the head row to take
the next position, so the chain stays linear under concurrent writers (ordering by auto-increment id would
not: ids are assigned before commit order). Entries written before the chain was keyed carry key id
`sha256` and a plain SHA-256; the first keyed entry seals them (its MAC covers their last hash).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import re
from datetime import UTC
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

GENESIS_HASH = "0" * 64
# Key id of the entries written before the chain was keyed: plain SHA-256, verified as before.
LEGACY_KEY_ID = "sha256"
_KEY_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
MIN_KEY_BYTES = 32


class AuditTampered(Exception):
    """The chain's head or tail is not what the writer expects: refuse to write rather than fork history."""


@functools.cache
def _parse_keys(raw: tuple[str, ...]) -> tuple[tuple[str, bytes], ...]:
    keys: list[tuple[str, bytes]] = []
    for item in raw:
        key_id, sep, secret = item.strip().partition(":")
        if not sep or not _KEY_ID_RE.match(key_id):
            raise ImproperlyConfigured(
                "AUDIT_HMAC_KEYS items must be keyid:base64secret (id: A-Z a-z 0-9 _ . -)."
            )
        if key_id == LEGACY_KEY_ID or key_id in dict(keys):
            raise ImproperlyConfigured(f"AUDIT_HMAC_KEYS: key id {key_id!r} is reserved or repeated.")
        try:
            padded = secret.strip().translate(str.maketrans("-_", "+/"))
            key = base64.b64decode(padded + "=" * (-len(padded) % 4), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ImproperlyConfigured(f"AUDIT_HMAC_KEYS: the secret of {key_id!r} is not base64.") from exc
        if len(key) < MIN_KEY_BYTES:
            raise ImproperlyConfigured(
                f"AUDIT_HMAC_KEYS: the secret of {key_id!r} has under {MIN_KEY_BYTES} bytes."
            )
        keys.append((key_id, key))
    if not keys:
        raise ImproperlyConfigured("AUDIT_HMAC_KEYS must hold at least one key.")
    return tuple(keys)


def audit_keys() -> dict[str, bytes]:
    """The configured chain keys by id, newest (the one new entries use) first."""
    return dict(_parse_keys(tuple(settings.AUDIT_HMAC_KEYS)))


def audit_current_key() -> tuple[str, bytes]:
    return _parse_keys(tuple(settings.AUDIT_HMAC_KEYS))[0]


class AuditLogImmutableError(Exception):
    """Raised on any attempt to change or delete audit entries through the ORM."""


class AuditLogQuerySet(models.QuerySet["AuditLog"]):
    def update(self, **kwargs: Any) -> int:
        raise AuditLogImmutableError("Audit log entries cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditLogImmutableError("Audit log entries cannot be deleted.")

    def bulk_update(self, *args: Any, **kwargs: Any) -> int:
        raise AuditLogImmutableError("Audit log entries cannot be updated.")


class AuditLog(models.Model):
    seq = models.PositiveBigIntegerField(unique=True, editable=False)
    timestamp = models.DateTimeField(editable=False, db_index=True)
    # No FK constraint: deleting a user must not rewrite (or be blocked by) history.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        editable=False,
    )
    actor_label = models.CharField(max_length=150, editable=False, help_text="Username, or 'system'.")
    action = models.CharField(max_length=100, db_index=True, editable=False)
    target_type = models.CharField(max_length=100, blank=True, editable=False)
    target_id = models.CharField(max_length=64, blank=True, editable=False)
    details = models.JSONField(default=dict, blank=True, editable=False)
    source_ip = models.GenericIPAddressField(null=True, blank=True, editable=False)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, editable=False, help_text="HMAC-SHA256 under key_id's key.")
    key_id = models.CharField(max_length=32, editable=False, help_text="'sha256': written before keying.")

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.target_type}:{self.target_id} by {self.actor_label}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None or kwargs.get("force_update"):
            raise AuditLogImmutableError("Audit log entries cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditLogImmutableError("Audit log entries cannot be deleted.")

    def compute_hash(self, key: bytes | None = None) -> str:
        """The entry's MAC under `key` (its key id's key), or its plain SHA-256 for a legacy entry."""
        return entry_hash(
            key=key,
            key_id=self.key_id,
            seq=self.seq,
            timestamp=self.timestamp.astimezone(UTC).isoformat(),
            actor_id=self.actor_id,
            actor_label=self.actor_label,
            action=self.action,
            target_type=self.target_type,
            target_id=self.target_id,
            details=self.details,
            source_ip=self.source_ip,
            prev_hash=self.prev_hash,
        )


def entry_hash(*, key: bytes | None, key_id: str, **fields: Any) -> str:
    if key_id == LEGACY_KEY_ID:  # exactly the pre-HMAC canonical form, so old entries verify unchanged
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()
    if key is None:
        raise ValueError(f"entry_hash needs the key of {key_id!r}.")
    canonical = json.dumps({**fields, "key_id": key_id}, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.digest(key, canonical.encode(), "sha256").hex()  # the one-shot C path: as cheap as sha256


class AuditChainHead(models.Model):
    """A single row (pk=1): the position and hash of the newest entry; locked by every writer.

    Created by migration 0002; a trigger refuses its deletion and any update that moves it backwards or to
    a hash no entry has, so it only advances (audit/migrations/0004)."""

    last_seq = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(pk=1), name="audit_chain_head_singleton")]

    def __str__(self) -> str:
        return f"Audit chain head at #{self.last_seq}"
