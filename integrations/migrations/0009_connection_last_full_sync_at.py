from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0008_connection_failure_streak"),
    ]

    operations = [
        migrations.AddField(
            model_name="connection",
            name="last_full_sync_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
