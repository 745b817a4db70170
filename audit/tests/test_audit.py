from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from audit.models import AuditLog, AuditLogImmutableError
from audit.selectors import audit_chain_verify
from audit.services import audit_record
from audit.tests.plugin import triggers_lifted


@pytest.fixture
def chain(db):
    return [
        audit_record(
            actor=None,
            action="tests.thing.happened",
            target_type="tests.thing",
            target_id=i,
            details={"n": i},
        )
        for i in range(1, 6)
    ]


def _raw(sql: str, params: list) -> None:
    """Tamper below the ORM, as a DBA could: the append-only triggers must be lifted first."""
    with triggers_lifted(connection), connection.cursor() as cur:
        cur.execute(sql, params)


def test_entries_chain_by_hash_and_verify(chain):
    assert [e.seq for e in chain] == [2, 3, 4, 5, 6]  # #1: the genesis entry
    assert all(b.prev_hash == a.hash for a, b in zip(chain, chain[1:], strict=False))
    assert audit_chain_verify().ok and audit_chain_verify().checked == 6
    call_command("audit_verify")


def test_the_orm_cannot_update_or_delete_entries(chain):
    entry = chain[0]
    entry.action = "tests.thing.rewritten"
    with pytest.raises(AuditLogImmutableError):
        entry.save()
    with pytest.raises(AuditLogImmutableError):
        entry.delete()
    with pytest.raises(AuditLogImmutableError):
        AuditLog.objects.filter(pk=entry.pk).update(action="x.y.z")
    with pytest.raises(AuditLogImmutableError):
        AuditLog.objects.all().delete()


@pytest.mark.dbspecific
def test_a_row_altered_by_raw_sql_is_caught_by_audit_verify(chain):
    _raw("UPDATE audit_auditlog SET details = %s WHERE seq = 3", ['{"n": 999}'])
    report = audit_chain_verify()
    assert not report.ok and report.first_bad_seq == 3 and "altered" in report.problem
    with pytest.raises(CommandError, match="#3 was altered"):
        call_command("audit_verify")


@pytest.mark.dbspecific
def test_a_row_deleted_by_raw_sql_is_caught_as_missing(chain):
    _raw("DELETE FROM audit_auditlog WHERE seq = 2", [])
    report = audit_chain_verify()
    assert not report.ok and report.first_bad_seq == 2 and "missing" in report.problem


@pytest.mark.dbspecific
def test_truncating_the_newest_entries_is_caught_through_the_head(chain):
    _raw("DELETE FROM audit_auditlog WHERE seq >= 4", [])
    report = audit_chain_verify()
    assert not report.ok and "head records #6" in report.problem


@pytest.mark.postgres
def test_postgres_trigger_refuses_update_and_delete_below_the_orm(chain):
    for sql in ("UPDATE audit_auditlog SET action = 'x.y.z' WHERE seq = 1", "DELETE FROM audit_auditlog"):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cur,
        ):
            cur.execute(sql)
    assert audit_chain_verify().ok


def test_secrets_in_details_are_masked(db):
    entry = audit_record(
        actor=None,
        action="tests.thing.configured",
        details={"client_secret": "s3cr3t", "nested": {"refresh_token": "r"}, "name": "ok"},
    )
    assert entry.details == {"client_secret": "***", "nested": {"refresh_token": "***"}, "name": "ok"}


def test_action_names_must_be_app_entity_event(db):
    with pytest.raises(ValueError, match="app.entity.event"):
        audit_record(actor=None, action="booked")


def test_source_ip_of_the_request_is_recorded(client, admin_user):
    from django.urls import reverse

    from scheduler.services import patient_create

    patient = patient_create(actor=admin_user, name="Ida Ip")
    client.force_login(admin_user)
    client.get(reverse("admin:scheduler_patient_change", args=[patient.pk]), REMOTE_ADDR="10.1.2.3")
    assert AuditLog.objects.get(action="scheduler.patient.viewed").source_ip == "10.1.2.3"
