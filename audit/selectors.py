"""Reads of the audit log: chain verification."""

from __future__ import annotations

from dataclasses import dataclass

from .models import GENESIS_HASH, AuditChainHead, AuditLog


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""


def audit_chain_verify(*, chunk_size: int = 2000) -> ChainReport:
    """Walk the chain in order; report the first missing, altered or re-linked entry, or truncation."""
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    for entry in AuditLog.objects.order_by("seq").iterator(chunk_size=chunk_size):
        if entry.seq != expected_seq:
            return ChainReport(False, checked, expected_seq, f"entry #{expected_seq} is missing")
        if entry.prev_hash != prev_hash:
            return ChainReport(
                False, checked, entry.seq, f"entry #{entry.seq} does not link to its predecessor"
            )
        if entry.compute_hash() != entry.hash:
            return ChainReport(False, checked, entry.seq, f"entry #{entry.seq} was altered (hash mismatch)")
        prev_hash, expected_seq, checked = entry.hash, expected_seq + 1, checked + 1
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is not None and (head.last_seq != checked or head.last_hash != prev_hash):
        return ChainReport(
            False, checked, checked + 1, f"the chain ends at #{checked} but the head records #{head.last_seq}"
        )
    return ChainReport(True, checked)
