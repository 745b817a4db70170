"""Issue 12, item 4: truncation, head rewinds and recomputed chains are tampering, and say so."""

from __future__ import annotations

import hashlib
import json
import logging

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from audit.models import GENESIS_HASH, LEGACY_KEY_ID, AuditChainHead, AuditLog, AuditTampered, _parse_keys
from audit.selectors import audit_chain_verify, audit_triggers_missing
from audit.services import audit_chain_genesis, audit_record
from audit.tasks import audit_anchor_task
from audit.tests.plugin import triggers_lifted

pytestmark = pytest.mark.dbspecific
UPDATE_ENTRY = "UPDATE audit_auditlog SET details = %s, prev_hash = %s, key_id = %s, hash = %s WHERE seq = %s"


def _write(n: int) -> list[AuditLog]:
    return [
        audit_record(
            actor=None,
            action="tests.thing.happened",
            target_type="tests.thing",
            target_id=i,
            details={"n": i},
        )
        for i in range(n)
    ]


@pytest.fixture
def chain(db):
    return _write(6)  # seqs 2..7 after the genesis entry #1


def _raw(sql: str, params: list | None = None) -> None:
    with triggers_lifted(connection), connection.cursor() as cur:
        cur.execute(sql, params or [])


def _last() -> AuditLog:
    return AuditLog.objects.order_by("-seq").first()


def _rewrite_from(seq: int, *, key_id: str, key: bytes | None) -> None:
    """An attacker rewrites every entry from `seq` on and recomputes the chain (and the head) to match."""
    prev = AuditLog.objects.get(seq=seq - 1).hash
    with triggers_lifted(connection), connection.cursor() as cur:
        for entry in AuditLog.objects.filter(seq__gte=seq).order_by("seq"):
            entry.details, entry.prev_hash, entry.key_id = {"n": "forged"}, prev, key_id
            entry.hash = entry.compute_hash(key)
            cur.execute(
                UPDATE_ENTRY,
                [json.dumps(entry.details), entry.prev_hash, key_id, entry.hash, entry.seq],
            )
            prev = entry.hash
        cur.execute("UPDATE audit_auditchainhead SET last_hash = %s WHERE id = 1", [prev])


def test_deleting_the_newest_entry_and_the_head_row_is_tampering_and_writes_fail_closed(chain):
    _raw("DELETE FROM audit_auditlog WHERE seq = 7")
    _raw("DELETE FROM audit_auditchainhead")
    report = audit_chain_verify()
    assert not report.ok and "head row is missing" in report.problem
    with pytest.raises(CommandError, match="head row is missing"):
        call_command("audit_verify")
    with pytest.raises(AuditTampered, match="head is missing"):
        audit_record(actor=None, action="tests.thing.happened")
    assert AuditLog.objects.count() == 6


def test_a_rewound_head_is_tampering_and_the_next_write_refuses_instead_of_colliding(chain):
    third = AuditLog.objects.get(seq=3)
    _raw("UPDATE audit_auditchainhead SET last_seq = 3, last_hash = %s", [third.hash])
    assert "head was rewound to #3" in audit_chain_verify().problem
    with pytest.raises(AuditTampered, match="#4 already exists"):
        audit_record(actor=None, action="tests.thing.happened")
    assert AuditLog.objects.count() == 7 and AuditChainHead.objects.get().last_seq == 3


def test_deleting_every_entry_and_the_head_is_not_intact(chain):
    _raw("DELETE FROM audit_auditlog")
    _raw("DELETE FROM audit_auditchainhead")
    with pytest.raises(CommandError, match="head row is missing"):
        call_command("audit_verify")


def test_deleting_every_entry_and_resetting_the_head_is_not_intact(chain):
    _raw("DELETE FROM audit_auditlog")
    _raw("UPDATE audit_auditchainhead SET last_seq = 0, last_hash = %s", [GENESIS_HASH])
    with pytest.raises(CommandError, match="log is empty"):
        call_command("audit_verify")


def test_deleting_every_entry_and_the_head_is_caught_by_the_anchors(chain, tmp_path, settings):
    settings.AUDIT_ANCHOR_FILE = str(tmp_path / "anchors.jsonl")
    audit_anchor_task()
    _raw("DELETE FROM audit_auditlog")
    _raw("DELETE FROM audit_auditchainhead")
    audit_chain_genesis(AuditLog, AuditChainHead)  # an attacker with the key re-opens a "fresh" chain
    assert audit_chain_verify().ok
    with pytest.raises(CommandError, match="names #7, beyond the chain's end #1: truncated"):
        call_command("audit_verify", anchors=tmp_path / "anchors.jsonl")


def test_entries_rewritten_with_a_recomputed_sha256_chain_are_detected(chain):
    for key_id in (LEGACY_KEY_ID, "test2"):
        prev = AuditLog.objects.get(seq=4).hash
        with triggers_lifted(connection), connection.cursor() as cur:
            for entry in AuditLog.objects.filter(seq__gte=5).order_by("seq"):
                # Without the key, the best an attacker can do is plain SHA-256 over the same canonical form.
                entry.details, entry.prev_hash, entry.key_id = {"n": "forged"}, prev, LEGACY_KEY_ID
                entry.hash = entry.compute_hash()
                cur.execute(
                    UPDATE_ENTRY,
                    [json.dumps(entry.details), prev, key_id, entry.hash, entry.seq],
                )
                prev = entry.hash
            cur.execute("UPDATE audit_auditchainhead SET last_hash = %s WHERE id = 1", [prev])
        report = audit_chain_verify()
        assert not report.ok and report.first_bad_seq == 5, report
        expected = "unkeyed (sha256) after keyed entries" if key_id == LEGACY_KEY_ID else "altered"
        assert expected in report.problem


def test_a_rewrite_by_someone_holding_the_key_is_caught_by_the_anchors(chain, tmp_path, settings):
    settings.AUDIT_ANCHOR_FILE = str(tmp_path / "anchors.jsonl")
    audit_anchor_task()
    _rewrite_from(5, key_id="test2", key=_parse_keys(tuple(settings.AUDIT_HMAC_KEYS))[0][1])
    assert audit_chain_verify().ok  # with the key, the database alone cannot tell
    with pytest.raises(CommandError, match="entry #7 does not match its anchor"):
        call_command("audit_verify", anchors=tmp_path / "anchors.jsonl")


def test_truncating_and_rewinding_consistently_is_caught_by_the_anchors(chain, tmp_path, settings):
    settings.AUDIT_ANCHOR_FILE = str(tmp_path / "anchors.jsonl")
    audit_anchor_task()
    _raw("DELETE FROM audit_auditlog WHERE seq >= 6")
    _raw("UPDATE audit_auditchainhead SET last_seq = 5, last_hash = %s", [AuditLog.objects.get(seq=5).hash])
    assert audit_chain_verify().ok
    _write(1)  # the next write takes #6 again: the anchor of #7 now lies beyond the end
    with pytest.raises(CommandError, match="names #7, beyond the chain's end #6"):
        call_command("audit_verify", anchors=tmp_path / "anchors.jsonl")


def test_anchors_go_to_the_log_stream_and_the_file_only_when_the_head_moved(
    chain, tmp_path, settings, caplog
):
    path = tmp_path / "anchors.jsonl"
    settings.AUDIT_ANCHOR_FILE = str(path)
    with caplog.at_level(logging.INFO, logger="hub.audit.anchor"):
        first = audit_anchor_task()
        audit_anchor_task()
    assert first["seq"] == 7 and first["hmac"] == _last().hash and first["key_id"] == "test2"
    assert [r.name for r in caplog.records].count("hub.audit.anchor") == 2
    assert len(path.read_text().splitlines()) == 1
    _write(1)
    audit_anchor_task()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [a["seq"] for a in lines] == [7, 8] and set(lines[0]) == {"seq", "hmac", "key_id", "at"}
    call_command("audit_verify", anchors=path)


def test_the_anchor_task_logs_an_error_when_the_last_anchor_no_longer_matches(
    chain, tmp_path, settings, caplog
):
    settings.AUDIT_ANCHOR_FILE = str(tmp_path / "anchors.jsonl")
    audit_anchor_task()
    _rewrite_from(6, key_id="test2", key=_parse_keys(tuple(settings.AUDIT_HMAC_KEYS))[0][1])
    with caplog.at_level(logging.ERROR, logger="audit.tasks"):
        audit_anchor_task()
    assert "entry #7 no longer matches the anchor" in caplog.text


def test_raw_sql_cannot_update_or_delete_the_log_nor_rewind_or_delete_the_head(chain):
    fourth = AuditLog.objects.get(seq=4)
    refused = [
        ("UPDATE audit_auditlog SET action = 'x.y.z' WHERE seq = 2", []),
        ("DELETE FROM audit_auditlog WHERE seq = 7", []),
        ("DELETE FROM audit_auditlog", []),
        ("DELETE FROM audit_auditchainhead", []),
        ("UPDATE audit_auditchainhead SET last_seq = 4, last_hash = %s", [fourth.hash]),
        ("UPDATE audit_auditchainhead SET last_seq = 8, last_hash = %s", ["f" * 64]),
        ("UPDATE audit_auditchainhead SET last_hash = %s", ["f" * 64]),
    ]
    if connection.vendor == "postgresql":
        refused += [("TRUNCATE audit_auditlog", []), ("TRUNCATE audit_auditchainhead CASCADE", [])]
    for sql, params in refused:
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql, params)
    assert AuditLog.objects.count() == 7 and AuditChainHead.objects.get().last_seq == 7
    assert audit_chain_verify().ok
    _write(1)  # the writer's own forward step is allowed
    assert audit_chain_verify().ok and AuditChainHead.objects.get().last_seq == 8


def test_missing_append_only_triggers_are_reported(chain):
    assert audit_triggers_missing() == []
    with triggers_lifted(connection):
        assert audit_triggers_missing()
        with pytest.raises(CommandError, match="append-only triggers missing"):
            call_command("audit_verify")
    assert audit_triggers_missing() == []


def test_entries_under_a_retired_key_verify_and_an_unknown_key_is_reported(db, settings):
    new, old = settings.AUDIT_HMAC_KEYS
    settings.AUDIT_HMAC_KEYS = [old]
    _write(2)
    settings.AUDIT_HMAC_KEYS = [new, old]  # rotation: prepend
    _write(2)
    assert list(AuditLog.objects.order_by("seq").values_list("key_id", flat=True)) == [
        "test2",  # genesis, written by the migration under the suite's keys
        "test1",
        "test1",
        "test2",
        "test2",
    ]
    assert audit_chain_verify().ok
    settings.AUDIT_HMAC_KEYS = [new]  # the retired key dropped too early
    report = audit_chain_verify()
    assert not report.ok and report.first_bad_seq == 2 and "names key 'test1'" in report.problem


def test_legacy_sha256_entries_verify_and_the_keyed_entry_seals_them(db):
    _raw("DELETE FROM audit_auditlog")
    prev = GENESIS_HASH
    entries = []
    for seq in (1, 2, 3):  # as written before this change: plain SHA-256, key id filled in by migration 0003
        entry = AuditLog(
            seq=seq,
            timestamp="2026-01-01T00:00:00+00:00",
            actor_label="system",
            action="tests.thing.happened",
            details={"n": seq},
            prev_hash=prev,
            key_id=LEGACY_KEY_ID,
        )
        canonical = json.dumps(
            {
                "seq": seq,
                "timestamp": "2026-01-01T00:00:00+00:00",
                "actor_id": None,
                "actor_label": "system",
                "action": "tests.thing.happened",
                "target_type": "",
                "target_id": "",
                "details": {"n": seq},
                "source_ip": None,
                "prev_hash": prev,
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        entry.hash = prev = hashlib.sha256(canonical.encode()).hexdigest()
        entries.append(entry)
    AuditLog.objects.bulk_create(entries)
    _raw("UPDATE audit_auditchainhead SET last_seq = 3, last_hash = %s", [prev])
    audit_chain_genesis(AuditLog, AuditChainHead)  # what migration 0005 does on an existing log
    _write(1)
    assert (
        list(AuditLog.objects.order_by("seq").values_list("key_id", flat=True))
        == ["sha256"] * 3 + ["test2"] * 2
    )
    assert audit_chain_verify().ok
    _raw("UPDATE audit_auditlog SET details = %s WHERE seq = 2", ['{"n": 99}'])
    assert "#2 was altered" in audit_chain_verify().problem


@pytest.mark.parametrize(
    "value",
    [
        [],
        ["nokey"],
        ["sha256:" + "A" * 44],
        ["a:short"],
        ["a:" + "A" * 44, "a:" + "B" * 44],
        ["a b:" + "A" * 44],
    ],
)
def test_malformed_audit_hmac_keys_are_refused(value):
    with pytest.raises(ImproperlyConfigured, match="AUDIT_HMAC_KEYS"):
        _parse_keys(tuple(value))
