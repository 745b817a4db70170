"""Append-only below the ORM on SQLite as on PostgreSQL.

The log refuses UPDATE and DELETE (and TRUNCATE on PostgreSQL). The head refuses DELETE, and any UPDATE
that moves it backwards or to a (seq, hash) no entry has: the writer's forward step is the only change
allowed. On SQLite, rebuilding a table (some ALTERs do) drops its triggers: `audit_verify` checks that they
are all present."""

from django.db import migrations

SQLITE = [
    """CREATE TRIGGER audit_auditlog_no_update BEFORE UPDATE ON audit_auditlog
    BEGIN SELECT RAISE(ABORT, 'audit_auditlog is append-only (UPDATE refused)'); END""",
    """CREATE TRIGGER audit_auditlog_no_delete BEFORE DELETE ON audit_auditlog
    BEGIN SELECT RAISE(ABORT, 'audit_auditlog is append-only (DELETE refused)'); END""",
    """CREATE TRIGGER audit_chainhead_no_delete BEFORE DELETE ON audit_auditchainhead
    BEGIN SELECT RAISE(ABORT, 'audit_auditchainhead is append-only (DELETE refused)'); END""",
    """CREATE TRIGGER audit_chainhead_forward_only BEFORE UPDATE ON audit_auditchainhead
    WHEN NEW.id != OLD.id OR NEW.last_seq < OLD.last_seq OR (NEW.last_seq > 0 AND NOT EXISTS (
        SELECT 1 FROM audit_auditlog WHERE seq = NEW.last_seq AND hash = NEW.last_hash))
    BEGIN SELECT RAISE(ABORT, 'audit_auditchainhead only moves forward to an existing entry (UPDATE refused)');
    END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS audit_auditlog_no_update",
    "DROP TRIGGER IF EXISTS audit_auditlog_no_delete",
    "DROP TRIGGER IF EXISTS audit_chainhead_no_delete",
    "DROP TRIGGER IF EXISTS audit_chainhead_forward_only",
]

PG = """
CREATE TRIGGER audit_auditlog_no_truncate BEFORE TRUNCATE ON audit_auditlog
    FOR EACH STATEMENT EXECUTE FUNCTION audit_auditlog_refuse_change();
CREATE OR REPLACE FUNCTION audit_chainhead_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN  -- nested: NEW/OLD are unassigned in the TRUNCATE (statement) trigger
        IF NEW.id = OLD.id AND NEW.last_seq >= OLD.last_seq AND (NEW.last_seq = 0 OR EXISTS (
                SELECT 1 FROM audit_auditlog WHERE seq = NEW.last_seq AND hash = NEW.last_hash)) THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit_auditchainhead only moves forward to an existing entry (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_chainhead_forward_only BEFORE UPDATE OR DELETE ON audit_auditchainhead
    FOR EACH ROW EXECUTE FUNCTION audit_chainhead_guard();
CREATE TRIGGER audit_chainhead_no_truncate BEFORE TRUNCATE ON audit_auditchainhead
    FOR EACH STATEMENT EXECUTE FUNCTION audit_chainhead_guard();
"""
PG_DROP = """
DROP TRIGGER IF EXISTS audit_chainhead_no_truncate ON audit_auditchainhead;
DROP TRIGGER IF EXISTS audit_chainhead_forward_only ON audit_auditchainhead;
DROP FUNCTION IF EXISTS audit_chainhead_guard();
DROP TRIGGER IF EXISTS audit_auditlog_no_truncate ON audit_auditlog;
"""


def add_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for sql in SQLITE:
            schema_editor.execute(sql)
    elif schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG, params=None)  # params=None: the bodies hold a literal %


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for sql in SQLITE_DROP:
            schema_editor.execute(sql)
    elif schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_auditlog_key_id")]
    operations = [migrations.RunPython(add_triggers, drop_triggers)]
