# Idempotency replay bodies were stored as plain JSON (a created patient's name, DOB, email, phone, kept
# forever). Existing keys are deleted rather than converted: they exist only so that a client's retry within
# minutes replays, and none of them is younger than the 24 hours keys now live for by the time this runs
# in a normal deploy; a retry after it is simply treated as a new request.

import lib.crypto
from django.db import migrations


def delete_plain_keys(apps, schema_editor):
    apps.get_model("accounts", "IdempotencyKey").objects.all().delete()


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0003_idempotency_key"),
    ]

    operations = [
        migrations.RunPython(delete_plain_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="idempotencykey",
            name="body",
            field=lib.crypto.EncryptedJSONField(null=True),
        ),
    ]
