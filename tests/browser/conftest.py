"""Browser tests: headless Debian Chromium (/usr/bin/chromium, never a downloaded build) driven by
Playwright against pytest-django's live server. A missing Chromium fails these tests; it never skips them.

HUB_SCREENSHOTS=1 saves the screenshots shown in the README under docs/screenshots/.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from conflicts.models import Conflict
from integrations.models import Connection
from integrations.services import external_appointment_upsert
from scheduler import services
from scheduler.models import Appointment, BusyBlock, Office, Service, Therapist

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
MONDAY = datetime(2026, 12, 7, tzinfo=UTC)  # the week every scenario lives in
DATE = "2026-12-07"


def ny(day: int, hour: int, minute: int = 0) -> datetime:
    """December `day`, 2026 at hour:minute in New York (EST, UTC-5), as UTC."""
    return datetime(2026, 12, day, hour + 5, minute, tzinfo=UTC)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (scripts/test_all does).")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; Django would take the test's own ORM calls
    # for calls from async code. They are plain synchronous calls here.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()


@pytest.fixture
def open_page(browser: Any, live_server: Any) -> Iterator[Any]:
    """open_page(username, password, path, width=1280, height=900) -> a signed-in page at path."""
    contexts: list[Any] = []

    def _open(username: str, password: str, path: str, width: int = 1280, height: int = 900) -> Any:
        context = browser.new_context(
            base_url=live_server.url,
            viewport={"width": width, "height": height},
            timezone_id="UTC",
            locale="en-US",
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors
        page.goto(f"{live_server.url}/login/?next={path}")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: urlsplit(url).path == urlsplit(path).path)
        page.wait_for_selector(".fc-view-harness")
        page.wait_for_function("() => Number(document.getElementById('calendar-app').dataset.loaded) >= 1")
        return page

    yield _open
    for context in contexts:
        context.close()


def screenshot(page: Any, name: str) -> None:
    if os.environ.get("HUB_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


@dataclass
class Scenario:
    thea: Therapist
    theo: Therapist
    service: Service
    confirmed: Appointment  # Mon 10:00-10:50
    afternoon: Appointment  # Mon 13:00-13:50, scheduled
    clashing: Appointment  # Mon 15:00-15:50, hub, in an overlap with `external`
    external: Appointment  # Mon 15:20-16:10, Zocdoc
    theirs: Appointment  # Theo's, Mon 16:00 Berlin (10:00 New York)
    busy: BusyBlock  # Tue 11:00-12:00, Google
    conflict: Conflict
    mine: set[int]


@pytest.fixture
def scenario(therapist_a: Therapist, therapist_b: Therapist, admin_user: Any) -> Scenario:
    office = Office.objects.create(name="Main Street", timezone="America/New_York")
    therapist_a.offices.add(office)
    service = Service.objects.create(name="Therapy session", durations=[50], buffer_after_minutes=10)

    def book(therapist: Therapist, start: datetime, **kw: Any) -> Appointment:
        return services.appointment_book(
            actor=admin_user,
            therapist=therapist,
            start=start,
            end=start + timedelta(minutes=50),
            service=service,
            office=office,
            **kw,
        )

    confirmed = book(therapist_a, ny(7, 10), status="confirmed")
    afternoon = book(therapist_a, ny(7, 13))
    clashing = book(therapist_a, ny(7, 15))
    completed = book(therapist_a, ny(8, 9))
    services.appointment_set_status(actor=admin_user, appointment=completed, status="completed")
    no_show = book(therapist_a, ny(8, 14))
    services.appointment_set_status(actor=admin_user, appointment=no_show, status="no_show")
    cancelled = book(therapist_a, ny(9, 14))
    services.appointment_cancel(actor=admin_user, appointment=cancelled)
    external, _ = external_appointment_upsert(
        connection=Connection.objects.create(platform="zocdoc", display_name="Zocdoc"),
        external_id="zd-1",
        therapist_id=therapist_a.pk,
        start=ny(7, 15, 20),
        end=ny(7, 16, 10),
    )
    busy = BusyBlock.objects.create(
        therapist=therapist_a, start=ny(8, 11), end=ny(8, 12), source_system="google", external_id="g-1"
    )
    theirs = book(therapist_b, ny(7, 10))  # 16:00 in Berlin
    conflict = Conflict.objects.get(status="open", kind="overlap", appointments=clashing)
    assert set(conflict.appointments.values_list("pk", flat=True)) == {clashing.pk, external.pk}
    mine = {confirmed.pk, afternoon.pk, clashing.pk, completed.pk, no_show.pk, cancelled.pk, external.pk}
    return Scenario(
        thea=therapist_a,
        theo=therapist_b,
        service=service,
        confirmed=confirmed,
        afternoon=afternoon,
        clashing=clashing,
        external=external,
        theirs=theirs,
        busy=busy,
        conflict=conflict,
        mine=mine,
    )
