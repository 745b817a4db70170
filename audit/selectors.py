"""Reads of the audit log: chain verification, the trigger check, anchors."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import connection

from .models import GENESIS_HASH, LEGACY_KEY_ID, AuditChainHead, AuditLog, audit_keys

# What migration 0004 installs (plus 0002's audit_auditlog_append_only on PostgreSQL).
TRIGGERS = {
    "sqlite": {
        "audit_auditlog_no_update",
        "audit_auditlog_no_delete",
        "audit_chainhead_no_delete",
        "audit_chainhead_forward_only",
    },
    "postgresql": {
        "audit_auditlog_append_only",
        "audit_auditlog_no_truncate",
        "audit_chainhead_forward_only",
        "audit_chainhead_no_truncate",
    },
}


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""
    last_seq: int = 0
    last_hash: str = GENESIS_HASH


def audit_chain_verify(*, chunk_size: int = 2000) -> ChainReport:
    """Walk the chain in order; report the first missing, altered, re-linked or unverifiable entry, then
    anything wrong at the end: an empty log, a missing, rewound or overtaken head, a truncated tail."""
    keys = audit_keys()
    expected_seq, prev_hash, checked, keyed_seen = 1, GENESIS_HASH, 0, False

    def broken(seq: int | None, problem: str) -> ChainReport:
        return ChainReport(False, checked, seq, problem, expected_seq - 1, prev_hash)

    for entry in AuditLog.objects.order_by("seq").iterator(chunk_size=chunk_size):
        if entry.seq != expected_seq:
            return broken(expected_seq, f"entry #{expected_seq} is missing")
        if entry.prev_hash != prev_hash:
            return broken(entry.seq, f"entry #{entry.seq} does not link to its predecessor")
        if entry.key_id == LEGACY_KEY_ID:
            # Unkeyed entries are only valid before the first keyed one (migration 0005 seals them).
            if keyed_seen:
                return broken(
                    entry.seq, f"entry #{entry.seq} is unkeyed (sha256) after keyed entries: forged"
                )
            key = None
        else:
            key = keys.get(entry.key_id)
            if key is None:
                return broken(
                    entry.seq,
                    f"entry #{entry.seq} names key {entry.key_id!r}, which is not in AUDIT_HMAC_KEYS "
                    "(keep retired keys listed; an unknown id is forged)",
                )
            keyed_seen = True
        if entry.compute_hash(key) != entry.hash:
            return broken(entry.seq, f"entry #{entry.seq} was altered (hash mismatch)")
        prev_hash, expected_seq, checked = entry.hash, expected_seq + 1, checked + 1

    head = AuditChainHead.objects.filter(pk=1).first()
    if head is None:
        return broken(checked + 1, f"the chain head row is missing (the chain ends at #{checked}): tampering")
    if head.last_seq > checked:
        return broken(
            checked + 1,
            f"the chain ends at #{checked} but the head records #{head.last_seq}: entries were removed",
        )
    if head.last_seq < checked:
        return broken(
            head.last_seq + 1, f"the head was rewound to #{head.last_seq}; the chain ends at #{checked}"
        )
    if head.last_hash != prev_hash:
        return broken(checked, f"the head's hash does not match entry #{checked}")
    if checked == 0:
        return broken(
            1, "the log is empty, but migration audit.0005 always writes a first entry: all were removed"
        )
    if not keyed_seen:
        return broken(
            checked + 1, f"no keyed entry: the chain ends in unkeyed entries at #{checked}: truncated"
        )
    return ChainReport(True, checked, last_seq=checked, last_hash=prev_hash)


def audit_triggers_missing() -> list[str]:
    """Names of the append-only triggers that are not installed (a table rebuild on SQLite drops them)."""
    expected = TRIGGERS.get(connection.vendor, set())
    with connection.cursor() as cur:
        if connection.vendor == "sqlite":
            cur.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        elif connection.vendor == "postgresql":
            cur.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'D'")
        else:
            return []
        present = {row[0] for row in cur.fetchall()}
    return sorted(expected - present)


@dataclass
class AnchorReport:
    checked: int = 0
    problems: list[str] = field(default_factory=list)


def audit_anchors_read(path: Path) -> Iterable[tuple[int, dict[str, Any] | None]]:
    """(line number, anchor or None if the line is not one) for each non-blank line of a JSON lines file."""
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                anchor = json.loads(line)
            except ValueError:
                yield number, None
                continue
            ok = (
                isinstance(anchor, dict)
                and isinstance(anchor.get("seq"), int)
                and isinstance(anchor.get("hmac"), str)
            )
            yield number, anchor if ok else None


def audit_anchors_verify(path: Path, *, chain_end: int, chunk_size: int = 500) -> AnchorReport:
    """Check each anchor against the log: an anchor beyond the chain's end is a truncation, an anchor whose
    hmac differs from the entry at its seq is a rewrite (even by someone holding the key)."""
    report = AnchorReport()
    anchors: list[tuple[int, dict[str, Any]]] = []
    for number, anchor in audit_anchors_read(path):
        if anchor is None:
            report.problems.append(f"line {number} of {path} is not an anchor")
        else:
            anchors.append((number, anchor))
    for start in range(0, len(anchors), chunk_size):
        chunk = anchors[start : start + chunk_size]
        stored = dict(
            AuditLog.objects.filter(seq__in={a["seq"] for _, a in chunk}).values_list("seq", "hash")
        )
        for number, anchor in chunk:
            seq, at = anchor["seq"], anchor.get("at", "?")
            report.checked += 1
            if seq > chain_end:
                report.problems.append(
                    f"anchor on line {number} ({at}) names #{seq}, beyond the chain's end #{chain_end}: "
                    "truncated"
                )
            elif seq > 0 and stored.get(seq) != anchor["hmac"]:
                what = "is missing" if seq not in stored else "does not match its anchor"
                report.problems.append(
                    f"entry #{seq} {what} (anchor on line {number}, {at}): history was rewritten"
                )
    return report
