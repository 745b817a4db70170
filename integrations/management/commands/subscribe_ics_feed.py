from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from integrations.ics_feed.connector import redacted
from integrations.ics_feed.services import ics_feed_subscribe
from lib.errors import ApplicationError
from scheduler.models import Therapist


class Command(BaseCommand):
    help = (
        "Subscribe a therapist to an .ics feed URL (a calendar published by a platform without an API, "
        "SimplePractice above all), polled on its own schedule. The URL is stored encrypted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("url")
        parser.add_argument("--therapist", required=True, metavar="EMAIL")
        parser.add_argument("--platform", choices=["ics_feed", "simplepractice"], default="ics_feed")
        parser.add_argument("--as-busy", action="store_true", help="Its events are busy time.")
        parser.add_argument("--every", type=int, default=15, metavar="MINUTES", help="Polling interval.")
        parser.add_argument("--name", default="", help="Display name.")

    def handle(self, *args: Any, **options: Any) -> None:
        therapist = Therapist.objects.filter(email__iexact=options["therapist"]).first()
        if therapist is None:
            raise CommandError(f"No therapist with the email {options['therapist']!r}.")
        try:
            connection = ics_feed_subscribe(
                actor=None,
                therapist=therapist,
                url=options["url"],
                platform=options["platform"],
                display_name=options["name"],
                as_busy=options["as_busy"],
                sync_interval_minutes=options["every"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"Subscribed {therapist} to {redacted(options['url'])} as connection {connection.pk} "
            f"({connection.platform}), polled every {connection.sync_interval_minutes} minutes."
        )
