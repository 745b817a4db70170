from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from integrations.models import Connection
from integrations.services import connection_sync


class Command(BaseCommand):
    help = "Run one sync of connection ID in the foreground and print the run's counts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("connection_id", type=int)
        parser.add_argument(
            "--full", action="store_true", help="Ignore the cursor: re-read the whole window."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not Connection.objects.filter(pk=options["connection_id"]).exists():
            raise CommandError(f"No connection {options['connection_id']}.")
        run = connection_sync(connection_id=options["connection_id"], force_full=options["full"])
        if run is None:
            raise CommandError("The connection is paused or needs re-authorisation; it was not synced.")
        self.stdout.write(
            f"{run.status}: fetched {run.fetched}, created {run.created}, updated {run.updated}, "
            f"cancelled {run.cancelled}, unchanged {run.unchanged}, errors {len(run.errors)}"
        )
        for error in run.errors[:20]:
            self.stdout.write(f"  {error}")
        if run.status == run.Status.FAILED:
            raise CommandError("The sync failed; nothing was changed.")
