"""Open the keyed chain with one entry (`audit.chain.keyed`): on a new database it is #1, so an empty log is
never valid; after legacy SHA-256 entries it seals them (its HMAC covers their last hash). History is not
rewritten."""

from django.db import migrations


def write_genesis(apps, schema_editor):
    from audit.services import audit_chain_genesis

    audit_chain_genesis(apps.get_model("audit", "AuditLog"), apps.get_model("audit", "AuditChainHead"))


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_append_only_triggers_on_both_databases")]
    operations = [migrations.RunPython(write_genesis, migrations.RunPython.noop)]
