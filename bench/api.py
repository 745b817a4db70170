"""Benchmark of the REST API's two hot reads (issue 4): the week calendar and one therapist's free slots.

    .venv/bin/python -m bench.api [--appointments N] [--therapists T] [--per-week W] [--requests R]

Data: N appointments of T therapists written by `bench.conflicts.Generator` (raw inserts), spread so that a
week of all T therapists holds about W appointments (the span follows: N * 5 / W weekdays), plus a few
thousand busy blocks (bulk_create) and the open conflicts of one `conflicts_scan()`; then ANALYZE and, on
PostgreSQL, VACUUM (the steady state autovacuum would reach).

A. GET /api/v1/calendar/?start=&end= for one UTC week (Monday to Monday) of all therapists, through the
   whole Django stack (django.test.Client, `Authorization: Token <knox key>` of a Front-desk user): 5
   warm-up requests, then R timed requests over R different random weeks. Then, over the same weeks, the
   pieces on their own: the selector `calendar_for_range`, DRF's JSON rendering of its result, the DRF view
   called without middleware, knox authentication and the user throttle. Diagnostics, not timed: a pass
   under CaptureQueriesContext (SQL statements per request), a cProfile pass, the costliest statements' plans.
B. GET /api/v1/therapists/{id}/free-slots/?start=&end=&service= for one therapist-week (the 50-minute
   service), random therapist and week, same client; the selector `therapist_free_slots` on its own.

Without DATABASE_URL it runs on a fresh SQLite file in a temporary directory (HUB_VAR_DIR is always a
temporary directory of this run, deleted afterwards). With a PostgreSQL DATABASE_URL the scheduler and
conflicts tables are TRUNCATEd: use a throwaway database (scripts/testenv). Report (markdown) to stdout,
progress to stderr.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.conflicts import (
    SLOTS_PER_DAY,
    ZONES,
    Generator,
    SQLTimer,
    analyze,
    code_version,
    database_version,
    describe_sql,
    fresh_database,
    load_average,
    log,
    machine,
    ms,
    percentile,
    setup_django,
    verdict,
)

SEED = 4242
WARMUP = 5
BUSY_BLOCKS = 4000
QUERY_PASSES = 5  # requests run under CaptureQueriesContext, and under cProfile (neither timed)
PROFILE_ROWS = 16
SPLIT_ROUNDS = 2  # passes over the timed weeks for the split of A's time
PLANS = 3  # query plans shown: the costliest statements of each endpoint
BUDGET_CALENDAR_MS = 50.0
BUDGET_FREE_SLOTS_MS = 20.0
FILL = 0.95  # bench.conflicts.Generator keeps >= 5 % of its cells free


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.split("\n")[0])
    parser.add_argument("--appointments", type=int, default=1_000_000, metavar="N")
    parser.add_argument("--therapists", type=int, default=50, metavar="T")
    parser.add_argument(
        "--per-week", type=int, default=1500, metavar="W", help="appointments in one week of all therapists"
    )
    parser.add_argument("--requests", type=int, default=50, metavar="R")
    args = parser.parse_args(argv)
    if args.appointments < 1000 or args.therapists < 1 or args.requests < 1 or args.per_week < 1:
        parser.error("need --appointments >= 1000 and positive --therapists, --per-week, --requests")
    if args.per_week > args.therapists * 5 * SLOTS_PER_DAY * FILL:
        parser.error(f"--per-week: at most {int(args.therapists * 5 * SLOTS_PER_DAY * FILL)} fit the grid")
    return args


def command_line() -> str:
    python = sys.executable
    try:
        python = os.path.relpath(python)
    except ValueError:
        pass
    return shlex.join([python, "-m", "bench.api", *sys.argv[1:]])


def median_ms(values: Sequence[float]) -> float:
    return statistics.median(values) * 1000


# --- data --------------------------------------------------------------------------------------------


def generate(n: int, t: int, per_week: int) -> tuple[Generator, dict[str, Any]]:
    from django.db.models import Count

    from conflicts.models import Conflict
    from conflicts.services import conflicts_scan
    from scheduler.models import BusyBlock

    weekdays = math.ceil(n * 5 / per_week)
    # Generator sizes its grid for max(n, m) at 95 % fill; an m that asks for `weekdays` weekdays.
    gen = Generator(n, t, int(weekdays * t * SLOTS_PER_DAY * FILL))
    info: dict[str, Any] = {}
    began = time.perf_counter()
    gen.therapists_and_services()
    log(f"generating {n:,} appointments over {len(gen.days)} weekdays ({gen.days[0]} to {gen.days[-1]})")
    rows = gen.grid_rows(gen.n_grid)
    rows += gen.extra_rows()
    assert len(rows) == n, (len(rows), n)
    gen.insert(rows)
    del rows
    info["gen_appointments"] = time.perf_counter() - began

    # Busy blocks from external calendars: 30-120 minutes, on the hour or half hour, in working hours;
    # some land on appointments (external_busy conflicts), most do not.
    began = time.perf_counter()
    rng = random.Random(SEED)
    blocks = []
    for i in range(BUSY_BLOCKS):
        th = rng.randrange(t)
        start = gen.cell_start(th, rng.randrange(len(gen.days)), rng.randrange(8, 17)) + timedelta(
            minutes=rng.choice((0, 30))
        )
        blocks.append(
            BusyBlock(
                therapist=gen.therapists[th],
                start=start,
                end=start + timedelta(minutes=rng.choice((30, 60, 90, 120))),
                source_system=rng.choice(("google", "outlook")),
                external_id=f"bench-busy-{i}",
            )
        )
    BusyBlock.objects.bulk_create(blocks, batch_size=1000)
    info["gen_blocks"] = time.perf_counter() - began
    log(f"{BUSY_BLOCKS:,} busy blocks in {info['gen_blocks']:.1f} s; conflicts_scan()")

    began = time.perf_counter()
    result = conflicts_scan()
    info["scan"] = time.perf_counter() - began
    info["opened"] = len(result.opened)
    info["open_by_kind"] = dict(
        Conflict.objects.filter(status=Conflict.Status.OPEN)
        .values_list("kind")
        .annotate(n=Count("pk"))
        .values_list("kind", "n")
    )
    log(f"conflicts_scan {info['scan']:.1f} s: {info['opened']:,} opened {info['open_by_kind']}")
    began = time.perf_counter()
    analyze()
    info["analyze"] = time.perf_counter() - began
    info["vacuum"] = vacuum()

    # What the timed requests need; the generator's big bookkeeping (millions of small objects) goes, so
    # the garbage collector's full passes during the requests are those of a normal process.
    for name in ("order", "occupying_cells", "touched", "_starts", "filled"):
        setattr(gen, name, None)
    gc.collect()
    return gen, info


def vacuum() -> float | None:
    """PostgreSQL: VACUUM after the bulk load and the scan's inserts, as autovacuum soon would (it sets the
    visibility map that index-only scans rely on), and so that autovacuum does not run during the timed
    requests. SQLite: nothing."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM")
    return time.perf_counter() - began


def mondays(gen: Generator) -> list[datetime]:
    """UTC Mondays 00:00 whose whole week lies inside the generated days."""
    first, last = gen.days[0], gen.days[-1]
    day = first + timedelta(days=(7 - first.weekday()) % 7)
    weeks = []
    while day + timedelta(days=7) <= last:
        weeks.append(datetime(day.year, day.month, day.day, tzinfo=UTC))
        day += timedelta(days=7)
    return weeks


# --- measuring -------------------------------------------------------------------------------------


def front_desk_user() -> tuple[Any, str]:
    from accounts.services import api_token_issue, user_create

    user = user_create(
        actor=None,
        username=f"bench-frontdesk-{os.getpid()}-{int(time.time())}",
        password="bench-password-not-secret",
        role="Front desk",
    )
    key, _ = api_token_issue(actor=None, user=user)
    return user, key


def timed_calls(items: Sequence[Any], call: Callable[[Any], Any]) -> tuple[list[float], list[Any]]:
    """call(item) for each item, timed; returns (times, results)."""
    times, results = [], []
    for item in items:
        began = time.perf_counter()
        results.append(call(item))
        times.append(time.perf_counter() - began)
    return times, results


def query_pass(requests: Sequence[Callable[[], Any]]) -> dict[str, Any]:
    """Each request under CaptureQueriesContext and an SQL timer (diagnostics: not the timed figures)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts, sql_totals = [], []
    per_statement: dict[str, list[float]] = {}
    last: dict[str, tuple[str, Any]] = {}  # description -> the last (sql, params) executed

    def record(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        last[describe(sql)] = (sql, params)
        return execute(sql, params, many, context)

    for request in requests:
        timer = SQLTimer()
        with (
            CaptureQueriesContext(connection) as captured,
            connection.execute_wrapper(timer),
            connection.execute_wrapper(record),
        ):
            request()
        counts.append(len(captured.captured_queries))
        sql_totals.append(timer.total)
        for sql, times in timer.by_sql.items():
            per_statement.setdefault(describe(sql), []).extend(times)
    n = len(requests)
    alone = {name: run_alone(*last[name]) for name in per_statement if name in last}
    statements = sorted(
        (
            (name, len(times) / n, sum(times) / n, alone.get(name, 0.0))
            for name, times in per_statement.items()
        ),
        key=lambda s: -s[3],
    )
    return {
        "queries": statistics.median(counts),
        "queries_min": min(counts),
        "queries_max": max(counts),
        "sql": statistics.median(sql_totals),
        "statements": statements,
        "plans": [(name, explain_sql(*last[name])) for name, *_ in statements[:PLANS] if name in last],
    }


def describe(sql: str) -> str:
    """describe_sql with `IN (%s, %s, ...)` shortened: one statement, one row, whatever its list length."""
    import re

    return re.sub(r"IN \((?:%s(?:, )?)+\)", "IN (...)", describe_sql(sql))


def run_alone(sql: str, params: Any, times: int = 5) -> float:
    """Median of executing one statement and fetching all its rows through a bare cursor. (On SQLite,
    `cursor.execute` returns at the first row and the rest of the work happens while fetching.)"""
    from django.db import connection

    if not sql.lstrip().upper().startswith("SELECT"):
        return 0.0
    elapsed = []
    with connection.cursor() as cursor:
        for _ in range(times):
            began = time.perf_counter()
            cursor.execute(sql, params)
            cursor.fetchall()
            elapsed.append(time.perf_counter() - began)
    return statistics.median(elapsed)


def explain_sql(sql: str, params: Any) -> str:
    """The plan of one executed statement with its parameters (PostgreSQL: run, actual rows and times)."""
    from django.db import connection

    if not sql or not sql.lstrip().upper().startswith("SELECT"):
        return ""
    prefix = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN (ANALYZE) "
    try:
        with connection.cursor() as cursor:
            cursor.execute(prefix + sql, params)
            rows = cursor.fetchall()
    except Exception as exc:  # diagnostics only
        return f"(EXPLAIN failed: {exc})"
    if connection.vendor == "sqlite":
        return "\n".join(str(r[-1]) for r in rows)
    return "\n".join(str(r[0]) for r in rows)


# Library functions shown in the profiles besides the project's own: where a request's time can go.
LANDMARKS = {
    "get_objects_for_user",  # guardian
    "has_perm",
    "authenticate",  # knox
    "check_throttles",
    "_filter_or_exclude",  # building querysets
    "execute_sql",  # running SQL and fetching rows
    "apply_converters",  # converting fetched values (datetimes)
    "render",  # DRF renderers and responses
    "get_response",  # Django's handler, middleware included
}


def profile(calls: Sequence[Callable[[], Any]]) -> list[tuple[str, float, float]]:
    """cProfile over the calls: the project's functions and the LANDMARKS, by cumulative time per call (ms,
    inflated by the profiler: read them as proportions) with how often each runs per call."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for call in calls:
        call()
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    root = str(Path(__file__).resolve().parent.parent) + "/"
    rows = []
    for (filename, line, func), (_cc, nc, _tt, ct, _callers) in stats.items():
        ours = filename.startswith(root) and "/.venv/" not in filename and "/bench/" not in filename
        if not ours and func not in LANDMARKS:
            continue
        short = filename.split("site-packages/", 1)[-1].removeprefix(root)
        rows.append((f"{short}:{line}({func})", ct * 1000 / len(calls), nc / len(calls)))
    rows.sort(key=lambda r: -r[1])
    return rows[:PROFILE_ROWS]


def bench_calendar(gen: Generator, user: Any, key: str, weeks: list[datetime], r: int) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from knox.auth import TokenAuthentication
    from rest_framework.renderers import JSONRenderer
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory
    from rest_framework.throttling import UserRateThrottle

    from scheduler.apis import CalendarApi
    from scheduler.selectors import calendar_for_range

    rng = random.Random(SEED + 1)
    chosen = rng.sample(weeks, min(len(weeks), WARMUP + r))
    warm, timed_weeks = chosen[:WARMUP], chosen[WARMUP:]
    client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Token {key}")
    path = "/api/v1/calendar/"

    def params(week: datetime) -> dict[str, str]:
        return {"start": week.isoformat(), "end": (week + timedelta(days=7)).isoformat()}

    def get(week: datetime) -> Any:
        response = client.get(path, params(week))
        if response.status_code != 200:
            raise SystemExit(f"calendar: HTTP {response.status_code}: {response.content[:300]!r}")
        return response

    log(f"A: {len(warm)} warm-up + {len(timed_weeks)} timed requests")
    for week in warm:
        get(week)
    gc.collect()
    full, responses = timed_calls(timed_weeks, get)
    load_after = load_average()
    sizes = [len(resp.content) for resp in responses]
    bodies = [json.loads(resp.content) for resp in responses]
    del responses
    appts = [len(b["appointments"]) for b in bodies]
    blocks = [len(b["busy_blocks"]) for b in bodies]
    markers = [len(b["conflicts"]) for b in bodies]
    therapists = {len(b["therapists"]) for b in bodies}
    del bodies
    log(f"A: full stack median {median_ms(full):.2f} ms, {statistics.median(appts):.0f} appointments")

    # The pieces, over the same weeks, interleaved week by week (so that drift in the machine's load hits
    # every piece alike): the full request again, the DRF view without middleware (rendered), the selector
    # alone, JSON rendering of its result alone, knox authentication alone, the user throttle alone. Each
    # selector call gets a fresh user object (cold permission caches, as in a request), fetched untimed.
    User = get_user_model()
    factory = APIRequestFactory()
    view = CalendarApi.as_view()
    renderer = JSONRenderer()
    auth = TokenAuthentication()
    throttle = UserRateThrottle()
    split: dict[str, list[float]] = {
        k: [] for k in ("full", "view", "selector", "render", "auth", "throttle")
    }

    def clock(name: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        result = call(*args, **kwargs)
        split[name].append(time.perf_counter() - began)
        return result

    def render_view(request: Any) -> Any:
        response = view(request)
        response.render()
        return response

    log(f"A: split pass ({SPLIT_ROUNDS} rounds)")
    gc.collect()
    for week in timed_weeks * SPLIT_ROUNDS:
        end = week + timedelta(days=7)
        clock("full", get, week)
        request = factory.get(path, params(week), HTTP_AUTHORIZATION=f"Token {key}")
        response = clock("view", render_view, request)
        if response.status_code != 200:
            raise SystemExit(f"calendar view: HTTP {response.status_code}")
        viewer = User.objects.get(pk=user.pk)
        data = clock("selector", calendar_for_range, viewer=viewer, start=week, end=end)
        clock("render", renderer.render, data, "application/json")
        request = Request(factory.get(path, params(week), HTTP_AUTHORIZATION=f"Token {key}"))
        clock("auth", auth.authenticate, request)
        request = Request(factory.get(path, params(week)))
        request.user = User.objects.get(pk=user.pk)
        if not clock("throttle", throttle.allow_request, request, None):
            log("A: warning: the throttle refused a diagnostic call")

    log("A: query pass")
    queries = query_pass([lambda w=w: get(w) for w in timed_weeks[:QUERY_PASSES]])
    selector_queries = query_pass(
        [
            lambda w=w: calendar_for_range(
                viewer=User.objects.get(pk=user.pk), start=w, end=w + timedelta(days=7)
            )
            for w in timed_weeks[:QUERY_PASSES]
        ]
    )
    log("A: profile of the selector")
    viewers = [User.objects.get(pk=user.pk) for _ in timed_weeks[:QUERY_PASSES]]
    selector_profile = profile(
        [
            lambda w=w, u=u: calendar_for_range(viewer=u, start=w, end=w + timedelta(days=7))
            for w, u in zip(timed_weeks, viewers, strict=False)
        ]
    )
    return {
        "profile": selector_profile,
        "load_after": load_after,
        "weeks": len(timed_weeks),
        "full": full,
        "sizes": sizes,
        "appointments": appts,
        "blocks": blocks,
        "markers": markers,
        "therapists": therapists,
        "split": split,
        "queries": queries,
        "selector_queries": selector_queries,
        "first_week": timed_weeks[0],
    }


def bench_free_slots(gen: Generator, key: str, weeks: list[datetime], r: int) -> dict[str, Any]:
    from django.test import Client

    from scheduler.models import Service, Therapist
    from scheduler.selectors import therapist_free_slots

    service = next(s for s in gen.services if s.durations == [50])
    rng = random.Random(SEED + 2)
    probes = [(rng.randrange(gen.t), rng.choice(weeks)) for _ in range(WARMUP + r)]
    client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Token {key}")

    def get(probe: tuple[int, datetime]) -> Any:
        th, week = probe
        response = client.get(
            f"/api/v1/therapists/{gen.therapists[th].pk}/free-slots/",
            {"start": week.isoformat(), "end": (week + timedelta(days=7)).isoformat(), "service": service.pk},
        )
        if response.status_code != 200:
            raise SystemExit(f"free-slots: HTTP {response.status_code}: {response.content[:300]!r}")
        return response

    log(f"B: {WARMUP} warm-up + {r} timed requests")
    for probe in probes[:WARMUP]:
        get(probe)
    gc.collect()
    full, responses = timed_calls(probes[WARMUP:], get)
    slots = [len(json.loads(resp.content)["slots"]) for resp in responses]
    sizes = [len(resp.content) for resp in responses]
    del responses
    log(f"B: full stack median {median_ms(full):.2f} ms")

    # Interleaved: the full request again, then the selector alone (objects fetched untimed).
    split: dict[str, list[float]] = {"full": [], "selector": []}
    gc.collect()
    for th, week in probes[WARMUP:]:
        began = time.perf_counter()
        get((th, week))
        split["full"].append(time.perf_counter() - began)
        therapist, svc = Therapist.objects.get(pk=gen.therapists[th].pk), Service.objects.get(pk=service.pk)
        began = time.perf_counter()
        therapist_free_slots(
            therapist=therapist,
            service=svc,
            duration=timedelta(minutes=50),
            start=week,
            end=week + timedelta(days=7),
        )
        split["selector"].append(time.perf_counter() - began)
    queries = query_pass([lambda p=p: get(p) for p in probes[WARMUP : WARMUP + QUERY_PASSES]])
    request_profile = profile([lambda p=p: get(p) for p in probes[WARMUP : WARMUP + QUERY_PASSES]])
    return {
        "profile": request_profile,
        "requests": len(full),
        "full": full,
        "slots": slots,
        "sizes": sizes,
        "split": split,
        "queries": queries,
        "service": f"{service.name} ({service.durations[0]} min, buffers {service.buffer_before_minutes}/"
        f"{service.buffer_after_minutes} min)",
    }


# --- report ------------------------------------------------------------------------------------------


def statements_table(title: str, q: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"{title}: {q['queries']:.0f} statements per request "
        f"(min {q['queries_min']}, max {q['queries_max']}), "
        f"{ms(q['sql'])} ms inside `cursor.execute` (median):",
        "",
        "| Statement | Per request | Mean ms inside `cursor.execute` "
        "| Alone: execute + fetchall, median ms |",
        "|---|---|---|---|",
    ]
    for name, count, seconds, alone in q["statements"]:
        lines.append(f"| `{name[:160]}` | {count:g} | {ms(seconds)} | {ms(alone)} |")
    return lines


def profile_table(title: str, rows: list[tuple[str, float, float]]) -> list[str]:
    lines = [
        "",
        f"{title} (most cumulative time first; ms per call, inflated by the profiler):",
        "",
        "| Function | Calls per call | Cumulative ms |",
        "|---|---|---|",
    ]
    lines += [f"| `{name[:110]}` | {calls:g} | {cum:.2f} |" for name, cum, calls in rows]
    return lines


def report(ctx: dict[str, Any]) -> str:
    a, b, info = ctx["a"], ctx["b"], ctx["info"]
    sp = a["split"]
    full, view, sel, ren, auth, thr = (
        statistics.median(sp[k]) for k in ("full", "view", "selector", "render", "auth", "throttle")
    )
    # The differences are medians of the per-week differences (each week's pieces ran back to back).
    rest = statistics.median(
        f - s - r for f, s, r in zip(sp["full"], sp["selector"], sp["render"], strict=True)
    )
    drf = statistics.median(
        v - s - r for v, s, r in zip(sp["view"], sp["selector"], sp["render"], strict=True)
    )
    outer = statistics.median(f - v for f, v in zip(sp["full"], sp["view"], strict=True))
    b_full, b_sel = (statistics.median(b["split"][k]) for k in ("full", "selector"))
    b_rest = statistics.median(f - s for f, s in zip(b["split"]["full"], b["split"]["selector"], strict=True))
    a_median, b_median = median_ms(a["full"]), median_ms(b["full"])
    kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(info["open_by_kind"].items()))
    lines = [
        f"### {ctx['db']}: N={ctx['n']:,}, T={ctx['t']}, R={ctx['r']}",
        "",
        "| Setting | Value |",
        "|---|---|",
        f"| Command | `{ctx['command']}` |",
        f"| Code | {ctx['code']} |",
        f"| Date | {ctx['date']} |",
        f"| Machine | {ctx['machine']}; "
        f"load average {ctx['load_start']} at start, {a['load_after']} just after A's timed requests, "
        f"{ctx['load_end']} at end |",
        f"| Python / Django | {platform.python_version()} / {ctx['django']} |",
        f"| Database | {ctx['db']} |",
        f"| Data | {ctx['n']:,} appointments of {ctx['t']} therapists in {len(ZONES)} zones, {ctx['days']:,} "
        f"weekdays {ctx['first']} to {ctx['last']} ({ctx['days'] / 261:.1f} years); "
        f"{ctx['week_count']:,} appointments intersect the first timed week "
        f"({ctx['week_label']}); {BUSY_BLOCKS:,} busy blocks; {info['opened']:,} open conflicts ({kinds}) |",
        f"| Generation (not in the figures) | appointments {info['gen_appointments']:.1f} s; busy blocks "
        f"{info['gen_blocks']:.1f} s; `conflicts_scan()` {info['scan']:.1f} s; "
        f"ANALYZE {info['analyze']:.1f} s"
        + ("" if info["vacuum"] is None else f"; VACUUM {info['vacuum']:.1f} s")
        + " |",
        f"| Client | `django.test.Client`, `Authorization: Token <knox key>` of a Front-desk user; "
        f"{WARMUP} warm-up requests, then one request per distinct random week / therapist-week |",
        "",
        "| Figure | Result | Budget |",
        "|---|---|---|",
        f"| A. `GET /api/v1/calendar/`, one UTC week, all {ctx['t']} therapists, {a['weeks']} requests: "
        f"median / p95 / max ms | **{a_median:.2f}** / {ms(percentile(a['full'], 0.95))} / "
        f"{ms(max(a['full']))} | median < {BUDGET_CALENDAR_MS:g} ms: "
        f"{verdict(a_median, BUDGET_CALENDAR_MS, 'ms')} |",
        f"| A. response: size, median (min–max) | {statistics.median(a['sizes']) / 1024:.0f} KiB "
        f"({min(a['sizes']) / 1024:.0f}–{max(a['sizes']) / 1024:.0f}) | |",
        f"| A. response: appointments / busy blocks / conflict markers, median (min–max) | "
        f"{statistics.median(a['appointments']):.0f} ({min(a['appointments'])}–{max(a['appointments'])}) / "
        f"{statistics.median(a['blocks']):.0f} / {statistics.median(a['markers']):.0f} "
        f"({min(a['markers'])}–{max(a['markers'])}); therapists {sorted(a['therapists'])} | |",
        f"| A. SQL statements per request | {a['queries']['queries']:.0f} | |",
        f"| B. `GET /api/v1/therapists/{{id}}/free-slots/`, one therapist-week, {b['service']}, "
        f"{b['requests']} requests: median / p95 / max ms | **{b_median:.2f}** / "
        f"{ms(percentile(b['full'], 0.95))} / {ms(max(b['full']))} | median < {BUDGET_FREE_SLOTS_MS:g} ms: "
        f"{verdict(b_median, BUDGET_FREE_SLOTS_MS, 'ms')} |",
        f"| B. response: slots, median (min–max); size | {statistics.median(b['slots']):.0f} "
        f"({min(b['slots'])}–{max(b['slots'])}); {statistics.median(b['sizes']) / 1024:.1f} KiB | |",
        f"| B. SQL statements per request | {b['queries']['queries']:.0f} | |",
        "",
        f"Where A's time goes: after the figures, {SPLIT_ROUNDS} more passes over the same weeks, timing for "
        "each week back to back the full request, the DRF view called without middleware, and each piece "
        "alone (medians; a difference is the median of the per-week differences):",
        "",
        "| Piece | ms | Share of full |",
        "|---|---|---|",
        f"| Selector `calendar_for_range` alone | {ms(sel)} | {sel / full:.0%} |",
        f"| of which inside `cursor.execute`, {a['selector_queries']['queries']:.0f} statements "
        "(separate pass; "
        "SQLite: up to the first row, PostgreSQL: whole result received, rows not yet converted) | "
        f"{ms(a['selector_queries']['sql'])} | {a['selector_queries']['sql'] / full:.0%} |",
        f"| JSON rendering of its result (`JSONRenderer.render`) | {ms(ren)} | {ren / full:.0%} |",
        f"| Rest of the stack = full − selector − rendering | {ms(rest)} | {rest / full:.0%} |",
        f"| of which DRF view overhead = view (no middleware) − selector − rendering | "
        f"{ms(drf)} | {drf / full:.0%} |",
        f"| of which knox `TokenAuthentication.authenticate` alone | {ms(auth)} | {auth / full:.0%} |",
        f"| of which `UserRateThrottle.allow_request` alone | {ms(thr)} | {thr / full:.0%} |",
        f"| of which middleware, URL routing, test client = full − view | {ms(outer)} | {outer / full:.0%} |",
        f"| Full request (this pass; the figure above is the first pass) | {ms(full)} | 100% |",
        "",
        f"B, same way: full request {ms(b_full)} ms, selector `therapist_free_slots` alone {ms(b_sel)} ms "
        f"({b_sel / b_full:.0%}), rest of the stack {ms(b_rest)} ms "
        f"({b_rest / b_full:.0%}); "
        "medians of an interleaved pass.",
    ]
    lines += profile_table(f"A, cProfile of `calendar_for_range` over {QUERY_PASSES} weeks", a["profile"])
    lines += profile_table(f"B, cProfile of the full request over {QUERY_PASSES} requests", b["profile"])
    lines += statements_table("A, SQL per request (full stack)", a["queries"])
    lines += statements_table("B, SQL per request (full stack)", b["queries"])
    for label, q in (("A", a["queries"]), ("B", b["queries"])):
        for name, plan in q["plans"]:
            if plan:
                lines += ["", f"{label}: plan of `{name[:120]}`:", "", "```", plan, "```"]
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # Our own scratch directory for var/ (and the SQLite file), never the project's var/.
    scratch = Path(tempfile.mkdtemp(prefix="bench-api-"))
    os.environ["HUB_VAR_DIR"] = str(scratch)
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{scratch / 'bench.sqlite3'}")
    try:
        code = code_version()  # read before the project is imported: the code measured
        setup_django()
        return run(args.appointments, args.therapists, args.per_week, args.requests, code)
    finally:
        from django.db import connection

        connection.close()
        shutil.rmtree(scratch, ignore_errors=True)


def run(n: int, t: int, per_week: int, r: int, code: str) -> int:
    import django

    from scheduler.models import Appointment

    started = datetime.now(UTC)
    load_start = load_average()
    fresh_database()
    db = database_version()
    log(f"{db}; N={n:,} T={t} per week ~{per_week:,} R={r}")
    gen, info = generate(n, t, per_week)
    weeks = mondays(gen)
    user, key = front_desk_user()

    a = bench_calendar(gen, user, key, weeks, r)
    week = a["first_week"]
    week_count = Appointment.objects.filter(start__lt=week + timedelta(days=7), end__gt=week).count()
    log(f"first timed week {week:%Y-%m-%d}: {week_count:,} appointments in the table")
    b = bench_free_slots(gen, key, weeks, r)

    ctx = {
        "command": command_line(),
        "code": code,
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "load_start": load_start,
        "load_end": load_average(),
        "machine": machine(),
        "django": django.get_version(),
        "db": db,
        "n": n,
        "t": t,
        "r": r,
        "days": len(gen.days),
        "first": gen.days[0].isoformat(),
        "last": gen.days[-1].isoformat(),
        "week_count": week_count,
        "week_label": f"{week:%Y-%m-%d} 00:00 UTC + 7 days",
        "info": info,
        "a": a,
        "b": b,
    }
    print(report(ctx), flush=True)
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
