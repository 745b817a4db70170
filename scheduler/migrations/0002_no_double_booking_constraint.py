"""PostgreSQL only: an exclusion constraint makes two occupying hub bookings of one therapist that
intersect impossible, whatever code path writes them. Admin overrides (with a reason) are exempt, and
external appointments are facts we store even when they clash. Django cannot create this on SQLite, where
the booking service serialises writers instead (IMMEDIATE transactions)."""

from django.db import migrations

CREATE = """
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE scheduler_appointment ADD CONSTRAINT appointment_no_double_booking
    EXCLUDE USING gist (therapist_id WITH =, tstzrange("start", "end", '[)') WITH &&)
    WHERE (source_system = 'hub' AND status IN ('scheduled', 'confirmed') AND override_reason = '');
"""
DROP = "ALTER TABLE scheduler_appointment DROP CONSTRAINT IF EXISTS appointment_no_double_booking;"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("scheduler", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
