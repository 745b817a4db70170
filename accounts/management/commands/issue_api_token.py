from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.services import api_token_issue


class Command(BaseCommand):
    help = "Print a new API token for USERNAME (use it as `Authorization: Token <key>`)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {options['username']!r}.")
        token, expiry = api_token_issue(actor=None, user=user)
        self.stdout.write(token)
        self.stderr.write(f"Expires {expiry:%Y-%m-%d %H:%M} UTC." if expiry else "Does not expire.")
