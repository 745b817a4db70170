from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from integrations.emulators import run_all


class Command(BaseCommand):
    help = (
        "Serve the platform emulators (the demo's external platforms) in the foreground, on EMULATOR_PORTS."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--live-every",
            type=float,
            default=120.0,
            help=(
                "Seconds between live changes: Zocdoc bookings announced by webhook, Kareo/Tebra changes "
                "found by the hub's next poll (0: none)."
            ),
        )

        parser.add_argument(
            "--scenario",
            action="append",
            default=[],
            metavar="PLATFORM=FILE",
            help="Serve this platform from a scenario file (JSON) instead of the demo's generated state; "
            "e.g. --scenario kareo=integrations/kareo/scenarios/demo.json. Repeatable.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        scenarios = {}
        for item in options["scenario"]:
            platform, sep, path = item.partition("=")
            if not sep or not path:
                raise CommandError(f"--scenario takes PLATFORM=FILE, not {item!r}.")
            scenarios[platform] = path
        try:
            servers = run_all(
                ports=settings.EMULATOR_PORTS,
                hub_url=settings.DEMO_HUB_URL,
                live_every=options["live_every"],
                scenarios=scenarios,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Emulators running: {settings.EMULATOR_PORTS} (Ctrl-C stops them).")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        for server in servers:
            if hasattr(server, "shutdown"):
                server.shutdown()
            if hasattr(server, "stopped"):
                server.stopped.set()
