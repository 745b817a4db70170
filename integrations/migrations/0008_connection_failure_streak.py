from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0007_connection_sync_requested_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="connection",
            name="failed_syncs",
            field=models.PositiveIntegerField(default=0),
        ),
    ]
