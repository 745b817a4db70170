from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from integrations.ics_feed.parse import IcsError, check_size
from integrations.ics_feed.services import ics_import_apply, import_window
from lib.errors import ApplicationError
from scheduler.models import Therapist


class Command(BaseCommand):
    help = (
        "Import an .ics file into a therapist's calendar (in the foreground) and print the counts. "
        "Recurring events are expanded over the window; re-importing the same file changes nothing; a "
        "malformed file is refused as a whole."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--therapist", required=True, metavar="EMAIL")
        parser.add_argument("--as-busy", action="store_true", help="Import as busy time, not appointments.")
        parser.add_argument("--window-start", type=date.fromisoformat, metavar="DATE")
        parser.add_argument("--window-end", type=date.fromisoformat, metavar="DATE")

    def handle(self, *args: Any, **options: Any) -> None:
        therapist = Therapist.objects.filter(email__iexact=options["therapist"]).first()
        if therapist is None:
            raise CommandError(f"No therapist with the email {options['therapist']!r}.")
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            check_size(path.stat().st_size, settings.ICS_IMPORT_MAX_BYTES)
        except IcsError as exc:
            raise CommandError(exc.message) from None
        try:
            window = import_window(therapist.timezone, options["window_start"], options["window_end"])
            result = ics_import_apply(
                actor=None,
                therapist=therapist,
                data=path.read_bytes(),
                window=window,
                as_busy=options["as_busy"],
                max_bytes=settings.ICS_IMPORT_MAX_BYTES,
                filename=path.name,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"{path.name}: {result.events} events, {result.occurrences} occurrences in the window "
            f"({window[0]:%Y-%m-%d} to {window[1]:%Y-%m-%d} UTC); created {result.created}, updated "
            f"{result.updated}, cancelled {result.cancelled}, unchanged {result.unchanged}, errors "
            f"{len(result.errors)}"
        )
        for error in result.errors[:20]:
            self.stdout.write(f"  {error}")
        for warning in result.warnings[:20]:
            self.stdout.write(f"  warning: {warning}")
