"""`manage.py seed_demo`: load the demo practice (once) and print the demo logins."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from scheduler.demo import ADMIN_URL, DEMO_LOGINS, demo_seed


class Command(BaseCommand):
    help = "Seed a demo practice (idempotent: a second run only resets the demo logins' passwords)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--today", help="Pretend today is this date (YYYY-MM-DD); default: today.")
        parser.add_argument(
            "--allow-without-debug",
            action="store_true",
            help="Seed even when DEBUG is off (the demo creates an Admin with a published password).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["allow_without_debug"]:
            raise CommandError(
                "Refusing to seed demo logins with published passwords while DEBUG is off "
                "(this looks like a production database). Pass --allow-without-debug to do it anyway."
            )
        try:
            today = date.fromisoformat(options["today"]) if options["today"] else None
        except ValueError as exc:
            raise CommandError(f"--today: {exc}") from exc
        summary = demo_seed(today=today)
        for line in summary.lines():
            self.stdout.write(line)
        self.stdout.write("")
        self.stdout.write(f"Demo logins ({ADMIN_URL}):")
        for role, username, password, _, _ in DEMO_LOGINS:
            self.stdout.write(f"  {role:<11} {username:<11} {password}")
