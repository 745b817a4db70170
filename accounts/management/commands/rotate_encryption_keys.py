from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from audit.services import audit_record
from lib.crypto import rotate_all


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted value (patients, raw payloads, credentials) under the newest key in "
        "FIELD_ENCRYPTION_KEYS. Rotation: prepend a new key, run this, then remove the old key."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        counts = rotate_all()
        audit_record(
            actor=None,
            action="accounts.encryption_keys.rotated",
            target_type="lib.crypto",
            details={"values": counts},
        )
        for column, n in counts.items():
            self.stdout.write(f"{column}: {n} re-encrypted")
