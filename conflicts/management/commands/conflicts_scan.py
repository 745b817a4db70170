from __future__ import annotations

import time
from datetime import UTC, date, datetime
from datetime import time as dtime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from conflicts.services import conflicts_scan


def _day(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), dtime(0), tzinfo=UTC)
    except ValueError as exc:
        raise CommandError(f"Dates are YYYY-MM-DD, got {value!r}.") from exc


class Command(BaseCommand):
    help = "Detect every kind of conflict across all therapists; open new ones and close vanished ones."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="start", help="Only appointments ending after this date (UTC).")
        parser.add_argument("--until", dest="end", help="Only appointments starting before this date (UTC).")

    def handle(self, *args: Any, **options: Any) -> None:
        began = time.perf_counter()
        result = conflicts_scan(start=_day(options["start"]), end=_day(options["end"]))
        self.stdout.write(
            f"{result.findings} conflicts found: {len(result.opened)} opened, {len(result.closed)} closed "
            f"({time.perf_counter() - began:.2f} s)."
        )
