from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.selectors import audit_chain_verify


class Command(BaseCommand):
    help = "Verify the audit log's hash chain; exit non-zero naming the first broken or missing entry."

    def handle(self, *args: Any, **options: Any) -> None:
        report = audit_chain_verify()
        if not report.ok:
            raise CommandError(f"Audit chain BROKEN after {report.checked} good entries: {report.problem}.")
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {report.checked} entries verified."))
