"""Benchmark of conflict detection reads (issue 3): the full scan and the check for one new booking.

    .venv/bin/python -m bench.conflicts [--appointments N] [--therapists T] [--check-db-size M] [--repeat R]

A. `conflicts.services.conflicts_scan()` over N appointments of T therapists, R times: the first run opens
   the conflicts, the other R-1 are steady state (nothing changed); plus a breakdown of one run, timed
   piece by piece here (load rows, working rules, `detect_all`, persistence).
B. The database is grown to M appointments, then `scheduler.services._clashing_ids` is timed for 500 random
   probes (after 20 warm-up probes), and the whole `appointment_book` service call for 200 probes into free
   slots, each inside a transaction that is rolled back.

The data is written straight into the tables (raw executemany, not through the services: this benchmarks
reads). Without DATABASE_URL it runs on a fresh SQLite file in a temporary directory, deleted afterwards.
With a SQLite DATABASE_URL the file is deleted and re-created; with a PostgreSQL one the scheduler and
conflicts tables are TRUNCATEd (CASCADE): use a throwaway database (scripts/testenv). The report (markdown)
goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import random
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ZONES = ("America/New_York", "Europe/Berlin", "Australia/Sydney", "America/Phoenix")
WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday")
WORKING_HOURS = {day: ["08:00-18:00"] for day in WEEKDAY_NAMES}
FIRST_DAY = date(2025, 11, 24)  # a Monday; the data spans about a year either side of late 2026
MIN_WEEKDAYS = 520  # ~2 years; more when the grid would otherwise be too full for M appointments
SLOTS_PER_DAY = 10  # hourly cells 08:00..17:00 local, each holding one 50-minute appointment
LENGTH = timedelta(minutes=50)
PATIENTS = 50_000
BATCH = 5000
SEED = 42
CLASH_PROBES, CLASH_WARMUP = 500, 20
BOOK_PROBES, BOOK_WARMUP = 200, 5

# (name, durations, buffer before, buffer after). Hourly cells leave 10 minutes between appointments and
# no two buffers add up to more than that, so back-to-back cells never clash, buffers included.
SERVICES = (("Therapy session", [50], 5, 5), ("Follow-up", [50, 30], 0, 5))

_T0 = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.1f} s] {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.conflicts", description=__doc__.split("\n")[0])
    parser.add_argument("--appointments", type=int, default=500_000, metavar="N")
    parser.add_argument("--therapists", type=int, default=200, metavar="T")
    parser.add_argument("--check-db-size", type=int, default=1_000_000, metavar="M")
    parser.add_argument("--repeat", type=int, default=5, metavar="R")
    args = parser.parse_args(argv)
    if args.appointments < 1000 or args.therapists < 1 or args.repeat < 1:
        parser.error("need --appointments >= 1000, --therapists >= 1, --repeat >= 1")
    if args.check_db_size < args.appointments:
        parser.error("--check-db-size must be at least --appointments (rows are only ever added)")
    return args


# --- Django ------------------------------------------------------------------------------------------


def setup_django() -> Path | None:
    """Configure and start Django; returns the scratch directory this run created (to delete), if any."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    scratch = None
    if not os.environ.get("DATABASE_URL") or not os.environ.get("HUB_VAR_DIR"):
        scratch = Path(tempfile.mkdtemp(prefix="bench-conflicts-"))
        # Set before the settings load, so neither a .env file nor the default var/ is used.
        os.environ.setdefault("HUB_VAR_DIR", str(scratch))
        os.environ.setdefault("DATABASE_URL", f"sqlite:///{scratch / 'bench.sqlite3'}")
    import django

    django.setup()
    return scratch


def fresh_database() -> None:
    """An empty, migrated database: a new SQLite file, or the given PostgreSQL database truncated."""
    from django.apps import apps
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor == "sqlite":
        name = str(settings.DATABASES["default"]["NAME"])
        if name != ":memory:" and not name.startswith("file:"):
            path = Path(name).resolve()
            if path == (Path(settings.BASE_DIR) / "var" / "hub.sqlite3").resolve():
                sys.exit(f"refusing to delete {path}: that is the project's own database")
            connection.close()
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            log(f"SQLite: fresh database {path}")
    log("migrate")
    call_command("migrate", verbosity=0, interactive=False)
    if connection.vendor == "postgresql":
        tables = sorted(
            {
                model._meta.db_table
                for label in ("scheduler", "conflicts")
                for model in apps.get_app_config(label).get_models(include_auto_created=True)
            }
        )
        log(f"PostgreSQL: TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        qn = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {', '.join(qn(t) for t in tables)} RESTART IDENTITY CASCADE")


def database_version() -> str:
    from django.db import connection

    if connection.vendor == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return f"{connection.display_name} {cursor.fetchone()[0]}"


def analyze() -> None:
    """PostgreSQL: ANALYZE after the bulk load, as autovacuum would soon do; SQLite: nothing (Django
    never runs ANALYZE, so a real SQLite hub plans without statistics too)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


# --- data --------------------------------------------------------------------------------------------


class Generator:
    """Writes therapists, services and appointments straight into the tables, deterministically.

    Each therapist has a grid of hourly cells (weekdays x 08:00..17:00 local) filled in a random order:
    the first N-ish cells for benchmark A, more for B, the rest stay free for booking probes.
    """

    def __init__(self, n: int, t: int, m: int) -> None:
        from django.db import connection

        from scheduler.models import Appointment

        self.rng = random.Random(SEED)
        self.n, self.t, self.m = n, t, m
        self.n_duplicates = max(1, n // 500)  # 0.2 %
        self.n_overlaps = n // 100  # 1 %
        self.n_outside = n // 200  # 0.5 %
        self.n_grid = n - self.n_duplicates - self.n_overlaps - self.n_outside
        cells_needed = max(n, m) / (t * SLOTS_PER_DAY * 0.95)  # keep >= 5 % of the cells free
        count = max(MIN_WEEKDAYS, math.ceil(cells_needed))
        self.days = []
        day = FIRST_DAY
        while len(self.days) < count:
            if day.weekday() < 5:
                self.days.append(day)
            day += timedelta(days=1)
        self.cells = len(self.days) * SLOTS_PER_DAY
        self.order = []  # per therapist: its cells in fill order
        for _ in range(t):
            cells = list(range(self.cells))
            self.rng.shuffle(cells)
            self.order.append(cells)
        self.filled = [0] * t  # how many of order[i] are taken
        self.touched: set[tuple[int, int]] = set()  # cells reached into by a deliberate overlap
        self.occupying_cells: list[tuple[int, int]] = []
        self._starts: dict[tuple[int, int, int], datetime] = {}

        self.connection = connection
        self.ops = connection.ops
        self.native_uuid = connection.features.has_native_uuid_field
        fields = [f for f in Appointment._meta.concrete_fields if not f.primary_key]
        self.attnames = [f.attname for f in fields]
        self.columns = [f.column for f in fields]
        self.table = Appointment._meta.db_table
        now = self.ops.adapt_datetimefield_value(datetime.now(UTC))
        self.base = {
            "source_system": "hub",
            "external_id": "",
            "connection_id": None,
            "office_id": None,
            "patient_ref": "",
            "type": "consult",
            "service_id": None,
            "series": "",
            "recurrence_id": "",
            "version": 1,
            "raw": None,
            "override_reason": "",
            "merged_into_id": None,
            "created_by_id": None,
            "created": now,
            "updated": now,
        }
        per_row = {"uid", "therapist_id", "start", "end", "timezone", "status"}
        unknown = set(self.attnames) - set(self.base) - per_row
        if unknown:
            raise SystemExit(f"Appointment has new fields this benchmark does not fill: {sorted(unknown)}")

    # --- reference data

    def therapists_and_services(self) -> None:
        from scheduler.models import Service, Therapist

        Service.objects.bulk_create(
            Service(name=name, durations=durations, buffer_before_minutes=before, buffer_after_minutes=after)
            for name, durations, before, after in SERVICES
        )
        self.services = list(Service.objects.order_by("pk"))
        Therapist.objects.bulk_create(
            Therapist(
                name=f"Bench therapist {i:04d}",
                email=f"bench-{i:04d}@example.invalid",
                timezone=ZONES[i % len(ZONES)],
                working_hours=WORKING_HOURS,
            )
            for i in range(self.t)
        )
        self.therapists = list(Therapist.objects.order_by("pk"))
        self.zones = [ZoneInfo(th.timezone) for th in self.therapists]

    # --- helpers

    def cell_start(self, therapist: int, day: int, hour: int) -> datetime:
        key = (therapist % len(ZONES), day, hour)
        start = self._starts.get(key)
        if start is None:
            local = datetime.combine(self.days[day], dtime(hour), tzinfo=self.zones[therapist])
            start = self._starts[key] = local.astimezone(UTC)
        return start

    def status(self) -> str:
        r = self.rng.random()
        if r < 0.72:
            return "scheduled"
        if r < 0.87:
            return "confirmed"
        if r < 0.95:
            return "completed"
        return "cancelled" if r < 0.98 else "no_show"

    def service_and_type(self) -> tuple[int | None, str]:
        r = self.rng.random()
        if r < 0.70:
            return self.services[0].pk, "telehealth" if r < 0.15 else "consult"
        if r < 0.95:
            return self.services[1].pk, "follow_up"
        return None, "admin"

    def patient(self) -> str:
        return f"pt_{self.rng.randrange(PATIENTS):06d}" if self.rng.random() < 0.95 else ""

    def row(self, therapist: int, start: datetime, status: str, **values: Any) -> tuple:
        d = dict(self.base)
        u = uuid.UUID(int=self.rng.getrandbits(128), version=4)
        d["uid"] = u if self.native_uuid else u.hex
        d["therapist_id"] = self.therapists[therapist].pk
        d["timezone"] = self.therapists[therapist].timezone
        d["start"] = self.ops.adapt_datetimefield_value(start)
        d["end"] = self.ops.adapt_datetimefield_value(start + LENGTH)
        d["status"] = status
        d.update(values)
        return tuple(d[a] for a in self.attnames)

    def grid_rows(self, total: int) -> list[tuple]:
        """`total` appointments in the next free cells, spread evenly over the therapists."""
        rows = []
        share, extra = divmod(total, self.t)
        for th in range(self.t):
            k = share + (1 if th < extra else 0)
            first = self.filled[th]
            if first + k > self.cells:
                raise SystemExit(f"therapist {th}: {first + k} appointments do not fit {self.cells} cells")
            for cell in self.order[th][first : first + k]:
                day, slot = divmod(cell, SLOTS_PER_DAY)
                status = self.status()
                service_id, kind = self.service_and_type()
                rows.append(
                    self.row(
                        th,
                        self.cell_start(th, day, 8 + slot),
                        status,
                        service_id=service_id,
                        type=kind,
                        patient_ref=self.patient(),
                    )
                )
                if status in ("scheduled", "confirmed"):
                    self.occupying_cells.append((th, cell))
            self.filled[th] = first + k
        return rows

    def extra_rows(self) -> list[tuple]:
        """Deliberate overlaps (1 %), outside-hours appointments (0.5 %), Zocdoc duplicates (0.2 %)."""
        rows = []
        eligible = [(th, c) for th, c in self.occupying_cells if c % SLOTS_PER_DAY <= 7]  # start <= 15:00
        picks = self.rng.sample(eligible, self.n_overlaps + self.n_duplicates)
        for i, (th, cell) in enumerate(picks[: self.n_overlaps]):
            # 20-30 minutes into an occupied cell: clashes with it and, if occupied, with the next one.
            day, slot = divmod(cell, SLOTS_PER_DAY)
            start = self.cell_start(th, day, 8 + slot) + timedelta(minutes=self.rng.choice((20, 25, 30)))
            self.touched.add((th, cell + 1))
            status = self.rng.choice(("scheduled", "confirmed"))
            if i % 2:
                # An external fact, stored even though it clashes.
                rows.append(
                    self.row(
                        th,
                        start,
                        status,
                        source_system="google",
                        external_id=f"bench-g-{i}",
                        patient_ref=self.patient(),
                    )
                )
            else:
                # An Admin override (exempt from PostgreSQL's exclusion constraint, as in the hub).
                service_id, kind = self.service_and_type()
                rows.append(
                    self.row(
                        th,
                        start,
                        status,
                        service_id=service_id,
                        type=kind,
                        patient_ref=self.patient(),
                        override_reason="bench: deliberate double booking",
                    )
                )
        for i, (th, cell) in enumerate(picks[self.n_overlaps :]):
            # The same visit, reported by Zocdoc a few minutes off (pseudonym in its own namespace).
            day, slot = divmod(cell, SLOTS_PER_DAY)
            start = self.cell_start(th, day, 8 + slot) + timedelta(minutes=self.rng.randint(-3, 3))
            rows.append(
                self.row(
                    th,
                    start,
                    "scheduled",
                    source_system="zocdoc",
                    external_id=f"bench-zd-{i}",
                    patient_ref=f"zocdoc:pt-{self.rng.randrange(PATIENTS)}",
                )
            )
        seen: set[tuple[int, int, int]] = set()
        while len(seen) < self.n_outside:
            th, day = self.rng.randrange(self.t), self.rng.randrange(len(self.days))
            hour = self.rng.choice((7, 18, 19))  # 07:00-07:50, 18:00-18:50, 19:00-19:50 local
            if (th, day, hour) in seen:
                continue
            seen.add((th, day, hour))
            service_id, kind = self.service_and_type()
            rows.append(
                self.row(
                    th,
                    self.cell_start(th, day, hour),
                    self.rng.choice(("scheduled", "confirmed")),
                    service_id=service_id,
                    type=kind,
                    patient_ref=self.patient(),
                )
            )
        return rows

    def insert(self, rows: list[tuple]) -> None:
        """Random physical order (bookings arrive interleaved), raw executemany in batches of 5000."""
        from django.db import transaction

        self.rng.shuffle(rows)
        qn = self.ops.quote_name
        sql = (
            f"INSERT INTO {qn(self.table)} ({', '.join(qn(c) for c in self.columns)}) "
            f"VALUES ({', '.join(['%s'] * len(self.columns))})"
        )
        with transaction.atomic(), self.connection.cursor() as cursor:
            for i in range(0, len(rows), BATCH):
                cursor.executemany(sql, rows[i : i + BATCH])
                if (i // BATCH) % 40 == 39:
                    log(f"  {i + BATCH:,} / {len(rows):,} rows")

    def free_cells(self, count: int) -> list[tuple[int, int, int]]:
        """(therapist, day, hour) of cells nobody occupies or reaches into: booking there succeeds."""
        probes = []
        while len(probes) < count:
            th = self.rng.randrange(self.t)
            free = self.order[th][self.filled[th] :]
            cell = free[self.rng.randrange(len(free))]
            if (th, cell) in self.touched or any(p[:2] == (th, cell) for p in probes):
                continue
            probes.append((th, cell))
        return [(th, *divmod(cell, SLOTS_PER_DAY)) for th, cell in probes]


# --- measuring -------------------------------------------------------------------------------------


def timed(func: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()  # each run starts from the same heap, the previous run's garbage is not billed to it
    began = time.perf_counter()
    result = func()
    return time.perf_counter() - began, result


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def scan_breakdown() -> dict[str, Any]:
    """One steady-state scan, piece by piece, reproducing conflicts_scan() without a window."""
    from django.db import connection, transaction
    from django.utils import timezone

    from conflicts.engine import Slot, detect_all
    from conflicts.services import _gc_paused, _persist, _service_buffers, _weeks, scan_load
    from scheduler.models import OCCUPYING_STATUSES, Appointment

    columns = ("pk", "therapist_id", "start", "end", "service_id", "patient_ref", "source_system")
    pieces: dict[str, Any] = {}
    gc.collect()
    buffers = _service_buffers()
    zero = (timedelta(0), timedelta(0))
    qs = Appointment.objects.filter(status__in=OCCUPYING_STATUSES)
    began = time.perf_counter()
    with _gc_paused():  # as conflicts_scan runs it
        slots, blocks = scan_load()
    pieces["load"] = time.perf_counter() - began
    pieces["rows"] = len(slots)

    began = time.perf_counter()
    lo = min(s.start for s in slots) if slots else timezone.now()
    hi = max(s.end for s in slots) if slots else timezone.now()
    weeks = _weeks({s.therapist_id for s in slots}, lo, hi)
    pieces["weeks"] = time.perf_counter() - began

    began = time.perf_counter()
    with _gc_paused():  # as conflicts_scan runs it
        findings = detect_all(slots, blocks, weeks)
    pieces["detect"] = time.perf_counter() - began
    pieces["findings"] = len(findings)

    began = time.perf_counter()
    with transaction.atomic():
        result = _persist(findings, None)
    pieces["persist"] = time.perf_counter() - began
    pieces["persist_changes"] = len(result.opened) + len(result.closed)
    del slots, findings

    # Diagnostics (not part of the figures above), each piece again on its own: the service's ORM read
    # (ORDER BY "start" from Appointment.Meta.ordering), the same without ORDER BY, the same SQL through a
    # bare cursor (driver conversion only), building the Slot objects, and detect_all detector by detector.
    ordered = qs.values_list(*columns)
    gc.collect()
    began = time.perf_counter()
    rows = list(ordered.iterator(chunk_size=10000))
    pieces["orm_ordered"] = time.perf_counter() - began
    gc.collect()
    began = time.perf_counter()
    slots = [
        Slot(
            id=pk,
            therapist_id=t,
            start=s,
            end=e,
            buffer_before=buffers.get(svc, zero)[0],
            buffer_after=buffers.get(svc, zero)[1],
            patient_ref=ref,
            source_system=src,
        )
        for pk, t, s, e, svc, ref, src in rows
    ]
    pieces["build_slots"] = time.perf_counter() - began
    del rows
    gc.collect()
    began = time.perf_counter()
    rows = list(qs.order_by().values_list(*columns).iterator(chunk_size=10000))
    pieces["orm_unordered"] = time.perf_counter() - began
    del rows
    sql, params = ordered.query.sql_with_params()
    gc.collect()
    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while cursor.fetchmany(10000):
            pass
    pieces["raw_fetch"] = time.perf_counter() - began
    pieces["detectors"] = detector_split(slots, blocks, weeks)
    del slots
    pieces["plan"] = explain(ordered)
    return pieces


def detector_split(slots: list[Any], blocks: list[Any], weeks: dict[int, Any]) -> dict[str, float]:
    """detect_all's pieces timed one by one (the engine's private helpers; diagnostics only)."""
    from conflicts import engine

    split: dict[str, float] = {}
    try:
        gc.collect()
        began = time.perf_counter()
        normalised = engine._normalise(slots)
        split["normalise"] = time.perf_counter() - began
        for name, run in (
            ("outside_hours", lambda: engine._outside_hours(*normalised, weeks)),
            ("patient_overlap", lambda: engine._patient_overlaps(*normalised)),
            ("duplicate", lambda: engine._duplicates(*normalised, timedelta(minutes=5))),
            ("overlap", lambda: engine._overlaps(*normalised)),
            ("external_busy", lambda: engine._external_busy(*normalised, blocks)),
        ):
            gc.collect()
            began = time.perf_counter()
            run()
            split[name] = time.perf_counter() - began
    except (AttributeError, TypeError) as exc:  # the engine's internals changed: skip, keep the figures
        log(f"A: detector split skipped: {exc!r}")
    return split


class SQLTimer:
    """connection.execute_wrapper that adds up the time spent in each statement (diagnostics pass only)."""

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0
        self.by_sql: dict[str, list[float]] = {}

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - began
            self.total += elapsed
            self.count += 1
            self.by_sql.setdefault(sql, []).append(elapsed)

    def take(self) -> tuple[float, int]:
        total, count = self.total, self.count
        self.total, self.count = 0.0, 0
        return total, count


def describe_sql(sql: str) -> str:
    """A short, readable form of one statement: its table and WHERE clause without quoting."""
    import re

    flat = re.sub(r"\s+", " ", sql).replace('"', "")
    table = re.search(r"\b(?:FROM|INTO|UPDATE) (\w+)", flat)
    where = re.search(r" WHERE (.*?)(?: ORDER BY | LIMIT |$)", flat)
    text = f"{flat.split(' ', 1)[0]} {table.group(1) if table else '?'}"
    if where:
        text += " WHERE " + re.sub(r"\b\w+\.(\w+)", r"\1", where.group(1))
    return text


def explain(qs: Any) -> str:
    try:
        return qs.explain()
    except Exception as exc:  # explain is diagnostics only
        return f"(EXPLAIN failed: {exc})"


def random_probe(gen: Generator, rng: random.Random) -> tuple[int, datetime, Any]:
    """A random therapist, weekday and local time 08:00-17:10 (5-minute steps), and a random service."""
    th = rng.randrange(gen.t)
    day = gen.days[rng.randrange(len(gen.days))]
    minutes = 8 * 60 + 5 * rng.randrange((17 * 60 + 10 - 8 * 60) // 5 + 1)
    local = datetime.combine(day, dtime(minutes // 60, minutes % 60), tzinfo=gen.zones[th])
    service = rng.choice([*gen.services, None])
    return th, local.astimezone(UTC), service


def bench_clashing_ids(gen: Generator) -> dict[str, Any]:
    from django.db import connection

    from scheduler.services import _clashing_ids

    rng = random.Random(SEED + 1)
    probes = [random_probe(gen, rng) for _ in range(CLASH_WARMUP + CLASH_PROBES)]

    def check(th: int, start: datetime, service: Any) -> list[int]:
        return _clashing_ids(
            therapist_id=gen.therapists[th].pk,
            start=start,
            end=start + LENGTH,
            service=service,
            exclude_pk=None,
        )

    times, clashing = [], 0
    for i, (th, start, service) in enumerate(probes):
        began = time.perf_counter()
        ids = check(th, start, service)
        elapsed = time.perf_counter() - began
        if i >= CLASH_WARMUP:
            times.append(elapsed)
            clashing += bool(ids)
    # Diagnostics pass over the same probes: how much of each call is spent executing SQL.
    timer = SQLTimer()
    sql_times, queries = [], 0
    with connection.execute_wrapper(timer):
        for th, start, service in probes[CLASH_WARMUP:]:
            check(th, start, service)
            total, count = timer.take()
            sql_times.append(total)
            queries = count
    return {"times": times, "clashing": clashing, "sql": sql_times, "queries": queries}


def bench_book(gen: Generator) -> dict[str, Any]:
    from django.db import connection, transaction

    from lib.errors import BookingConflict
    from scheduler.services import appointment_book

    cells = gen.free_cells(BOOK_WARMUP + BOOK_PROBES)

    def book(i: int, th: int, day: int, hour: int) -> None:
        start = gen.cell_start(th, day, 8 + hour)
        with transaction.atomic():
            appointment_book(
                actor=None,
                therapist=gen.therapists[th],
                start=start,
                end=start + LENGTH,
                service=gen.services[i % len(gen.services)],
            )
            transaction.set_rollback(True)

    times, refused = [], 0
    for i, (th, day, hour) in enumerate(cells):
        began = time.perf_counter()
        try:
            book(i, th, day, hour)
        except BookingConflict:
            refused += 1
            continue
        elapsed = time.perf_counter() - began
        if i >= BOOK_WARMUP:
            times.append(elapsed)
    # Diagnostics pass over the same (still free: everything was rolled back) cells.
    timer = SQLTimer()
    sql_times, counts, booked = [], [], 0
    with connection.execute_wrapper(timer):
        for i, (th, day, hour) in enumerate(cells[BOOK_WARMUP:], start=BOOK_WARMUP):
            try:
                book(i, th, day, hour)
            except BookingConflict:
                timer.take()
                continue
            total, count = timer.take()
            sql_times.append(total)
            counts.append(count)
            booked += 1
    slowest = max(timer.by_sql.items(), key=lambda item: sum(item[1]), default=("", []))
    return {
        "times": times,
        "refused": refused,
        "sql": sql_times,
        "queries": statistics.median(counts) if counts else 0,
        "slowest_sql": describe_sql(slowest[0]),
        "slowest_per_booking": sum(slowest[1]) / max(booked, 1),
        "slowest_count": len(slowest[1]) / max(booked, 1),
    }


# --- report ------------------------------------------------------------------------------------------


def machine() -> str:
    cpu = ""
    memory = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB RAM"
                break
    except OSError:
        pass
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parts = [
        f"nproc {nproc}" + (f" ({cpu})" if cpu else ""),
        memory,
        f"{platform.system()} {platform.machine()}",
    ]
    return ", ".join(p for p in parts if p)


def command_line() -> str:
    python = sys.executable
    try:
        python = os.path.relpath(python)
    except ValueError:
        pass
    return shlex.join([python, "-m", "bench.conflicts", *sys.argv[1:]])


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def verdict(value: float, budget: float, unit: str) -> str:
    if value <= budget:
        return f"met ({value / budget:.0%} of budget)"
    return f"**missed** by {value - budget:.2f} {unit} ({value / budget:.2f}x)"


def report(ctx: dict[str, Any]) -> str:
    a, b = ctx["scan"], ctx["b"]
    steady, bd = a["steady"], a["breakdown"]
    clash, book = b["clash"], b["book"]
    pieces = bd["load"] + bd["weeks"] + bd["detect"] + bd["persist"]
    lines = [
        f"### {ctx['db']}: N={ctx['n']:,}, T={ctx['t']}, M={ctx['m']:,}",
        "",
        "| Setting | Value |",
        "|---|---|",
        f"| Command | `{ctx['command']}` |",
        f"| Date | {ctx['date']} |",
        f"| Code | {ctx['code']} |",
        f"| Machine | {ctx['machine']}; "
        f"load average {ctx['load_start']} at start, {ctx['load_end']} at end |",
        f"| Python / Django | {platform.python_version()} / {ctx['django']} |",
        f"| Database | {ctx['db']} |",
        f"| Data | {ctx['n']:,} appointments ({a['rows']:,} occupying, read by the scan), "
        f"{ctx['t']} therapists in {len(ZONES)} zones, "
        f"{ctx['days']} weekdays {ctx['first']} to {ctx['last']}; grown to {ctx['m']:,} for B |",
        f"| Generation (not in the figures) | {ctx['n']:,} rows {ctx['gen_a']:.1f} s; "
        f"+{ctx['m'] - ctx['n']:,} rows {ctx['gen_b']:.1f} s; ANALYZE {ctx['analyze']:.1f} s |",
        "",
        "| Figure | Result | Budget |",
        "|---|---|---|",
        f"| A. first full scan (opens {a['first_opened']:,} conflicts) | {a['first']:.2f} s | |",
    ]
    if steady:
        median = statistics.median(steady)
        lines.append(
            f"| A. full scan, steady state: median (min–max) of {len(steady)} runs | "
            f"**{median:.2f} s** ({min(steady):.2f}–{max(steady):.2f}) | < 5 s: {verdict(median, 5.0, 's')} |"
        )
    clash_median = statistics.median(clash["times"]) * 1000
    lines += [
        f"| A. one run: load {bd['rows']:,} occupying rows → `Slot`s | {bd['load']:.2f} s | |",
        f"| A. one run: working rules (`_weeks`) | {bd['weeks']:.2f} s | |",
        f"| A. one run: engine `detect_all` ({bd['findings']:,} findings) | {bd['detect']:.2f} s | |",
        f"| A. one run: persistence (`_persist`, {bd['persist_changes']} changes) | "
        f"{bd['persist']:.2f} s | |",
        f"| A. one run: total of the pieces | {pieces:.2f} s | |",
        f"| B. `_clashing_ids` vs {ctx['m']:,} rows, {len(clash['times'])} probes "
        f"({clash['clashing']} clashing): median / p95 / max | **{clash_median:.2f}** / "
        f"{ms(percentile(clash['times'], 0.95))} / {ms(max(clash['times']))} ms | "
        f"median < 2 ms: {verdict(clash_median, 2.0, 'ms')} |",
    ]
    if book["times"]:
        lines.append(
            f"| B. `appointment_book` (rolled back), {len(book['times'])} probes: median / p95 / max | "
            f"**{ms(statistics.median(book['times']))}** / {ms(percentile(book['times'], 0.95))} / "
            f"{ms(max(book['times']))} ms | |"
        )
    if book["refused"]:
        lines.append(f"| B. booking probes refused as clashes (not timed) | {book['refused']} | |")
    detectors = " / ".join(f"{name} {t:.2f}" for name, t in bd["detectors"].items()) or "n/a"
    lines += [
        "",
        "Diagnostics (each piece re-run on its own after the figures; not part of them):",
        "",
        "| Diagnostic | Result |",
        "|---|---|",
        f"| A. load: ORM `values_list` as the service runs it (ORDER BY start) / same without ORDER BY / "
        f"bare cursor, same SQL (driver conversion only) | {bd['orm_ordered']:.2f} / "
        f"{bd['orm_unordered']:.2f} / {bd['raw_fetch']:.2f} s |",
        f"| A. load: building {bd['rows']:,} `Slot` objects from the fetched tuples | "
        f"{bd['build_slots']:.2f} s |",
        f"| A. `detect_all` by piece (s) | {detectors} |",
        f"| B. `_clashing_ids`: time in SQL ({clash['queries']} statements), median | "
        f"{ms(statistics.median(clash['sql']))} ms |",
    ]
    if book["sql"]:
        lines += [
            f"| B. `appointment_book`: time in SQL ({book['queries']:.0f} statements), median | "
            f"{ms(statistics.median(book['sql']))} ms |",
            f"| B. `appointment_book`: costliest statement ({book['slowest_count']:.0f} per booking), "
            f"`{book['slowest_sql']}` | {ms(book['slowest_per_booking'])} ms per booking |",
        ]
    lines += [
        "",
        "Scan query plan (`Appointment.objects.filter(status__in=OCCUPYING_STATUSES).values_list(...)`):",
        "",
        "```",
        bd["plan"],
        "```",
    ]
    return "\n".join(lines)


def code_version() -> str:
    """The commit measured, and whether the working tree had uncommitted changes."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "log", "-1", "--format=%h %cs"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "n/a"
    return f"{head}" + (" + uncommitted changes" if dirty else "")


def load_average() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


# --- main --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    n, t, m, repeat = args.appointments, args.therapists, args.check_db_size, args.repeat
    # A plain `kill` still runs the clean-up below (the scratch directory can hold a 400 MB database).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    scratch = setup_django()
    try:
        return run(n, t, m, repeat)
    finally:
        from django.db import connection

        connection.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def run(n: int, t: int, m: int, repeat: int) -> int:
    import django

    from conflicts.services import conflicts_scan

    started = datetime.now(UTC)
    load_start = load_average()
    code = code_version()  # now: the modules measured are the ones imported at start
    fresh_database()
    db = database_version()
    log(f"{db}; N={n:,} T={t} M={m:,} R={repeat}")

    gen = Generator(n, t, m)
    began = time.perf_counter()
    gen.therapists_and_services()
    log(f"generating {n:,} appointments over {len(gen.days)} weekdays")
    rows = gen.grid_rows(gen.n_grid)
    rows += gen.extra_rows()
    assert len(rows) == n, (len(rows), n)
    gen.insert(rows)
    del rows
    gen_a = time.perf_counter() - began
    began = time.perf_counter()
    analyze()
    analyze_a = time.perf_counter() - began
    log(f"generated in {gen_a:.1f} s (+ANALYZE {analyze_a:.1f} s)")

    # A. full scan
    log("A: first scan")
    first, result = timed(conflicts_scan)
    scan = {"first": first, "first_opened": len(result.opened), "steady": []}
    log(f"A: first scan {first:.2f} s, opened {len(result.opened):,} ({result.findings:,} findings)")
    for i in range(repeat - 1):
        elapsed, result = timed(conflicts_scan)
        if result.opened or result.closed:
            log(f"A: warning: steady-state run changed {len(result.opened)} / {len(result.closed)} conflicts")
        scan["steady"].append(elapsed)
        log(f"A: steady-state scan {i + 1}/{repeat - 1}: {elapsed:.2f} s")
    log("A: breakdown of one steady-state run")
    scan["breakdown"] = breakdown = scan_breakdown()
    scan["rows"] = breakdown["rows"]
    log(
        f"A: load {breakdown['load']:.2f} s, weeks {breakdown['weeks']:.2f} s, "
        f"detect_all {breakdown['detect']:.2f} s, persist {breakdown['persist']:.2f} s"
    )

    # B. one booking's check against M appointments
    began = time.perf_counter()
    if m > n:
        log(f"B: adding {m - n:,} appointments")
        gen.insert(gen.grid_rows(m - n))
    gen_b = time.perf_counter() - began
    began = time.perf_counter()
    analyze()
    analyze_b = time.perf_counter() - began
    log(f"B: added in {gen_b:.1f} s (+ANALYZE {analyze_b:.1f} s)")
    log(f"B: _clashing_ids, {CLASH_WARMUP} warm-up + {CLASH_PROBES} probes")
    clash = bench_clashing_ids(gen)
    log(f"B: _clashing_ids median {ms(statistics.median(clash['times']))} ms")
    log(f"B: appointment_book, {BOOK_WARMUP} warm-up + {BOOK_PROBES} probes (rolled back)")
    book = bench_book(gen)
    if book["times"]:
        log(f"B: appointment_book median {ms(statistics.median(book['times']))} ms")

    ctx = {
        "command": command_line(),
        "load_start": load_start,
        "code": code,
        "load_end": load_average(),
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "django": django.get_version(),
        "db": db,
        "n": n,
        "t": t,
        "m": m,
        "days": len(gen.days),
        "first": gen.days[0].isoformat(),
        "last": gen.days[-1].isoformat(),
        "gen_a": gen_a,
        "gen_b": gen_b,
        "analyze": analyze_a + analyze_b,
        "scan": scan,
        "b": {"clash": clash, "book": book},
    }
    print(report(ctx), flush=True)
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
