"""`manage.py drain_write_queue`: send what is due in the write queue once, in the foreground."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from integrations.services import write_queue_drain


class Command(BaseCommand):
    help = "Send the due external-calendar writes once, in the foreground, and print what happened."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--time-limit",
            type=float,
            default=300.0,
            help="Stop claiming new batches after this many seconds.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        counts = write_queue_drain(time_limit=options["time_limit"])
        self.stdout.write(
            f"sent {counts.sent}, retrying {counts.retrying}, dead {counts.dead}, waiting {counts.waiting}"
        )
