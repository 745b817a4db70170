"""Sync ingest benchmark (issue 5): normalise + upsert + ledger for N external appointments.

    .venv/bin/python -m bench.ingest [--appointments 100000] [--therapists 50] [--page 1000]

A fresh database (SQLite by default; DATABASE_URL for PostgreSQL). Events arrive in pages, as a real
sync pages through a platform, and go through integrations.services.sync_apply exactly as in production
(ledger, pseudonymised patients, encrypted raw payloads, conflict detection per touched therapist, one
audit entry per page). Reported: the first ingest (all new), a re-apply of the same pages (all unchanged),
and an update pass (every record at a newer version, moved by 15 minutes).
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.conflicts import database_version, fresh_database, log, machine, setup_django


def events(n: int, therapists: int, *, version: str, shift: timedelta = timedelta(0)) -> list[Any]:
    from integrations.base import ExternalEvent

    rng = random.Random(7)
    first = datetime(2026, 1, 5, 13, 0, tzinfo=UTC)
    out = []
    for i in range(n):
        day, slot = divmod(i // therapists, 8)
        start = first + timedelta(days=day + (day // 5) * 2, hours=slot) + shift  # weekdays, 8 a day
        out.append(
            ExternalEvent(
                external_id=f"zd-{i:07d}",
                start=start,
                end=start + timedelta(minutes=50),
                status=rng.choice(("scheduled", "confirmed", "scheduled", "completed")),
                provider_key=f"pr_{i % therapists}",
                patient_key=f"dev-pt-{rng.randrange(20000)}",
                version=version,
                raw={
                    "appointment_id": f"zd-{i:07d}",
                    "provider_location_id": f"pr_{i % therapists}|lo_1",
                    "appointment_status": "confirmed",
                    "start_time": start.isoformat(),
                },
            )
        )
    return out


def run_pages(connection: Any, batch: list[Any], page: int) -> tuple[float, list[float]]:
    from integrations.base import FetchResult
    from integrations.services import sync_apply

    per_page = []
    began = time.perf_counter()
    for i in range(0, len(batch), page):
        t0 = time.perf_counter()
        sync_apply(connection=connection, result=FetchResult(batch[i : i + page]))
        per_page.append(time.perf_counter() - t0)
    return time.perf_counter() - began, per_page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appointments", type=int, default=100_000)
    parser.add_argument("--therapists", type=int, default=50)
    parser.add_argument("--page", type=int, default=1000)
    args = parser.parse_args(argv)
    setup_django()
    fresh_database()
    from django.db import connection as db

    from integrations.models import Connection
    from scheduler.models import Therapist

    therapists = Therapist.objects.bulk_create(
        [
            Therapist(
                name=f"T{i}",
                email=f"t{i}@bench.test",
                timezone="America/New_York",
                working_hours={
                    d: ["08:00-18:00"] for d in ("monday", "tuesday", "wednesday", "thursday", "friday")
                },
            )
            for i in range(args.therapists)
        ]
    )
    conn = Connection.objects.create(
        platform="zocdoc",
        display_name="bench",
        config={"provider_map": {f"pr_{i}": t.pk for i, t in enumerate(therapists)}},
    )
    log(f"building {args.appointments} events")
    first = events(args.appointments, args.therapists, version="2026-11-01T00:00:00Z")
    newer = events(
        args.appointments, args.therapists, version="2026-11-02T00:00:00Z", shift=timedelta(minutes=15)
    )
    rows = []
    for label, batch in (
        ("first ingest (all new)", first),
        ("re-apply (all unchanged)", first),
        ("update pass (all newer, moved)", newer),
    ):
        log(label)
        total, pages = run_pages(conn, batch, args.page)
        rows.append((label, total, len(batch) / total, statistics.median(pages) * 1000))
    print(
        f"`{' '.join(['python -m bench.ingest', *(argv or sys.argv[1:])])}` — "
        f"{db.vendor} {database_version()}, "
        f"Python {platform.python_version()}, {machine()}, {datetime.now(UTC):%Y-%m-%d}"
    )
    print(f"\n{args.appointments} appointments, {args.therapists} therapists, pages of {args.page}\n")
    print("| pass | total | rate | median page |\n|---|---|---|---|")
    for label, total, rate, page_ms in rows:
        print(f"| {label} | {total:.1f} s | {rate:,.0f}/s | {page_ms:.0f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
