"""Record per entry which key signed it. Existing entries are plain SHA-256 ("sha256") and keep verifying
as before; nothing is rewritten (ADD COLUMN fires no row trigger)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_chain_head_and_append_only_trigger")]
    operations = [
        migrations.AddField(
            model_name="auditlog",
            name="key_id",
            field=models.CharField(
                default="sha256", editable=False, help_text="'sha256': written before keying.", max_length=32
            ),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name="auditlog",
            name="hash",
            field=models.CharField(editable=False, help_text="HMAC-SHA256 under key_id's key.", max_length=64),
        ),
    ]
