from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.selectors import audit_anchors_verify, audit_chain_verify, audit_triggers_missing


class Command(BaseCommand):
    help = (
        "Verify the audit log's HMAC chain, its head and its append-only triggers, and with --anchors the "
        "anchors published outside the database; exit non-zero naming every problem found."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--anchors", type=Path, help="JSON lines file of anchors (AUDIT_ANCHOR_FILE).")

    def handle(self, *args: Any, anchors: Path | None = None, **options: Any) -> None:
        if anchors is not None and not anchors.is_file():
            raise CommandError(f"No anchors file at {anchors}.")
        report = audit_chain_verify()
        problems = (
            [] if report.ok else [f"chain BROKEN after {report.checked} good entries: {report.problem}"]
        )
        missing = audit_triggers_missing()
        if missing:
            problems.append(f"append-only triggers missing: {', '.join(missing)}")
        checked_anchors = 0
        if anchors is not None:
            anchor_report = audit_anchors_verify(anchors, chain_end=report.last_seq)
            checked_anchors = anchor_report.checked
            problems += anchor_report.problems
        if problems:
            raise CommandError("Audit log TAMPERED:\n  " + "\n  ".join(problems))
        suffix = f"; {checked_anchors} anchors match" if anchors is not None else ""
        self.stdout.write(
            self.style.SUCCESS(f"Audit chain intact: {report.checked} entries verified{suffix}.")
        )
