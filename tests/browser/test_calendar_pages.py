"""The journeys staff actually make, in headless Chromium against a live server (issue 8)."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditLog
from conflicts.models import Conflict
from scheduler.models import Appointment

from .conftest import DATE, Scenario, ny, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BLUE = "rgb(29, 78, 216)"  # --scheduled


def event(page: Any, appointment_id: int) -> Any:
    return page.locator(f".fc-event[data-appointment='{appointment_id}']")


def shown_ids(page: Any) -> set[int]:
    return {
        int(i)
        for i in page.eval_on_selector_all(
            ".fc-event[data-appointment]", "els => els.map(e => e.dataset.appointment)"
        )
    }


def loads(page: Any) -> int:
    """The number of calendar loads requested so far."""
    return int(page.evaluate("document.getElementById('calendar-app').dataset.requested"))


def wait_reloaded(page: Any, before: int) -> None:
    """Wait until a load requested after `before` has been painted."""
    page.wait_for_function(f"() => Number(document.getElementById('calendar-app').dataset.loaded) > {before}")


def slot_point(page: Any, date: str, time: str) -> tuple[float, float]:
    """Where to press in the week grid for `date` at `time` (a few pixels into the slot)."""
    column = page.locator(f".fc-timegrid-col[data-date='{date}']").bounding_box()
    lane = page.locator(f".fc-timegrid-slot-lane[data-time='{time}']").bounding_box()
    return column["x"] + column["width"] / 2, lane["y"] + 4


def test_admin_resolves_a_conflict_from_its_marker_and_the_audit_log_records_it(
    open_page: Any, scenario: Scenario, admin_user: Any
) -> None:
    page = open_page("ada", "pw-admin-123", f"/calendar/board/?date={DATE}")
    marked = event(page, scenario.clashing.pk)
    page.wait_for_selector(f".fc-event[data-appointment='{scenario.clashing.pk}'] .flag")
    assert "Conflict" in marked.locator(".flag").inner_text()
    assert "in an open conflict" in marked.get_attribute("aria-label")
    assert event(page, scenario.external.pk).locator(".flag").count() == 1
    card = page.locator(f"#conflict-list [data-conflict='{scenario.conflict.pk}']")
    assert card.locator(".side").count() == 2  # both appointments, side by side

    marked.click(position={"x": 8, "y": 4})  # its top edge; the overlapping event covers the rest
    details = page.locator("#details-dialog")
    assert details.is_visible()
    assert "Overlap" in details.locator("[data-field=conflicts]").inner_text()
    details.get_by_role("button", name=f"Resolve conflict {scenario.conflict.pk}").click()
    dialog = page.locator("#conflict-dialog")
    dialog.locator(f".side[data-appointment='{scenario.external.pk}']").wait_for()
    assert (
        "Managed in Zocdoc"
        in dialog.locator(f".side[data-appointment='{scenario.external.pk}']").inner_text()
    )
    screenshot(page, "board-conflict-dialog")
    before = loads(page)
    dialog.locator(f".side[data-appointment='{scenario.clashing.pk}']").get_by_role(
        "button", name="Cancel this one"
    ).click()
    wait_reloaded(page, before)
    assert not dialog.is_visible()

    page.wait_for_selector(f".fc-event[data-appointment='{scenario.clashing.pk}'][data-status='cancelled']")
    assert page.locator(".fc-event .flag").count() == 0  # the marker is gone from both sides
    page.wait_for_selector(f"#conflict-list [data-conflict='{scenario.conflict.pk}']", state="detached")
    scenario.conflict.refresh_from_db()
    assert (scenario.conflict.status, scenario.conflict.resolution) == ("resolved", "cancel")
    assert scenario.conflict.resolved_by == admin_user
    assert Appointment.objects.get(pk=scenario.clashing.pk).status == "cancelled"
    entry = AuditLog.objects.filter(action="conflicts.conflict.resolved").get()
    assert entry.actor == admin_user and entry.target_id == str(scenario.conflict.pk)
    assert entry.details["resolution"] == "cancel" and entry.details["appointment_id"] == scenario.clashing.pk
    assert page.js_errors == []


def test_front_desk_books_an_empty_slot_and_a_clash_is_refused_with_its_reason(
    open_page: Any, scenario: Scenario, frontdesk_user: Any
) -> None:
    page = open_page("fran", "pw-desk-123", f"/calendar/board/?date={DATE}")
    page.wait_for_function("() => document.getElementById('calendar-app').dataset.ready === 'true'")
    before = loads(page)
    page.select_option("#f-therapist", str(scenario.thea.pk))  # debounced filter, range-only reload
    wait_reloaded(page, before)
    assert scenario.theirs.pk not in shown_ids(page)
    screenshot(page, "board")

    # A clash first: with only cancelled appointments shown, Monday 10:00 looks free but is taken; the
    # API's reason is shown and nothing is written.
    before = loads(page)
    page.select_option("#f-status", "cancelled")
    wait_reloaded(page, before)
    assert scenario.confirmed.pk not in shown_ids(page)
    page.mouse.click(*slot_point(page, DATE, "10:00:00"))
    booking = page.locator("#book-dialog")
    booking.wait_for()
    booking.get_by_label("Service").select_option(str(scenario.service.pk))
    booking.get_by_role("button", name="Book").click()
    error = booking.locator("#book-error")
    error.wait_for()
    assert f"already has appointment(s) {scenario.confirmed.pk}" in error.inner_text()
    count = Appointment.objects.count()
    booking.get_by_role("button", name="Cancel").click()
    before = loads(page)
    page.select_option("#f-status", "")
    wait_reloaded(page, before)

    # Wednesday 11:00 is free.
    page.mouse.click(*slot_point(page, "2026-12-09", "11:00:00"))
    booking.wait_for()
    assert "Wed 9 Dec 2026, 11:00 (America/New_York)" in booking.locator("#book-when").inner_text()
    assert booking.get_by_label("Therapist").input_value() == str(scenario.thea.pk)
    before = loads(page)
    booking.get_by_role("button", name="Book").click()
    wait_reloaded(page, before)
    assert not booking.is_visible()

    created = Appointment.objects.exclude(pk__lte=max(scenario.mine | {scenario.theirs.pk})).get()
    assert Appointment.objects.count() == count + 1
    assert (created.therapist, created.start, created.end) == (scenario.thea, ny(9, 11), ny(9, 11, 50))
    assert (created.status, created.source_system, created.service) == ("scheduled", "hub", scenario.service)
    assert not created.conflicts.filter(status="open").exists()
    assert AuditLog.objects.filter(action="scheduler.appointment.booked", actor=frontdesk_user).count() == 1
    shown = event(page, created.pk)
    assert "11:00 - 11:50" in shown.inner_text()
    assert shown.evaluate("e => getComputedStyle(e).backgroundColor") == BLUE
    assert shown.locator(".flag").count() == 0

    # Without a mouse: the "New booking" button, date and time fields, all reachable by keyboard.
    page.get_by_role("button", name="New booking…").focus()
    page.keyboard.press("Enter")
    booking.wait_for()
    booking.get_by_label("Date").fill("2026-12-10")
    booking.get_by_label("Start time").fill("09:00")
    before = loads(page)
    booking.get_by_label("Start time").press("Enter")  # submits the form
    wait_reloaded(page, before)
    keyboard_booked = Appointment.objects.get(start=ny(10, 9))
    assert (keyboard_booked.therapist, keyboard_booked.end) == (scenario.thea, ny(10, 9, 50))
    assert event(page, keyboard_booked.pk).count() == 1
    assert page.js_errors == []


def test_dragging_onto_busy_time_asks_first_and_changes_nothing_until_a_choice(
    open_page: Any, scenario: Scenario, frontdesk_user: Any
) -> None:
    page = open_page("fran", "pw-desk-123", f"/calendar/board/?date={DATE}")
    page.wait_for_function("() => document.getElementById('calendar-app').dataset.ready === 'true'")
    moved = scenario.afternoon
    busy = page.locator(f".fc-event[data-busy='{scenario.busy.pk}']")
    assert busy.inner_text().strip().endswith("Busy")

    def drag_to_busy() -> None:
        box = event(page, moved.pk).bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 4)
        page.mouse.down()
        x, y = slot_point(page, "2026-12-08", "11:00:00")
        page.mouse.move(x, y, steps=12)
        page.mouse.move(x, y + 1, steps=2)
        page.mouse.up()

    drag_to_busy()
    clash = page.locator("#clash-dialog")
    clash.wait_for()
    assert f"Moving appointment {moved.pk} to Tue 8 Dec 2026, 11:00–11:50" in clash.inner_text()
    assert clash.locator(f"li[data-busy='{scenario.busy.pk}']").is_visible()
    assert "Nothing has been changed" in clash.inner_text()
    assert clash.get_by_role("button", name="Move anyway (Admin override)").is_hidden()  # not an admin
    screenshot(page, "board-clash-dialog")
    moved.refresh_from_db()
    assert (moved.start, moved.version) == (ny(7, 13), 1)  # nothing changed while the dialog is open
    assert event(page, moved.pk).evaluate("e => e.closest('.fc-timegrid-col').dataset.date") == DATE

    clash.get_by_role("button", name="Keep original time").click()
    assert not clash.is_visible()
    moved.refresh_from_db()
    assert (moved.start, moved.version) == (ny(7, 13), 1)
    assert event(page, moved.pk).evaluate("e => e.closest('.fc-timegrid-col').dataset.date") == DATE

    # Choosing to move anyway goes through the API; the busy clash becomes a conflict for review.
    drag_to_busy()
    clash.wait_for()
    before = loads(page)
    clash.get_by_role("button", name="Move anyway (opens a conflict for review)").click()
    wait_reloaded(page, before)
    moved.refresh_from_db()
    assert (moved.start, moved.end, moved.version) == (ny(8, 11), ny(8, 11, 50), 2)
    assert Conflict.objects.filter(status="open", kind="external_busy", appointments=moved).exists()
    page.wait_for_selector(f".fc-event[data-appointment='{moved.pk}'] .flag")
    assert event(page, moved.pk).evaluate("e => e.closest('.fc-timegrid-col').dataset.date") == "2026-12-08"
    assert page.js_errors == []


def test_an_admin_drags_onto_an_appointment_and_overrides_with_a_reason(
    open_page: Any, scenario: Scenario, admin_user: Any
) -> None:
    page = open_page("ada", "pw-admin-123", f"/calendar/board/?date={DATE}")
    page.wait_for_function("() => document.getElementById('calendar-app').dataset.ready === 'true'")
    moved = scenario.afternoon
    box = event(page, moved.pk).bounding_box()
    page.mouse.move(box["x"] + 10, box["y"] + 4)
    page.mouse.down()
    x, y = slot_point(page, DATE, "10:00:00")
    page.mouse.move(x - 20, y, steps=12)
    page.mouse.move(x - 20, y + 1, steps=2)
    page.mouse.up()
    clash = page.locator("#clash-dialog")
    clash.wait_for()
    assert clash.locator(f"li[data-appointment='{scenario.confirmed.pk}']").is_visible()
    assert clash.get_by_role("button", name="Move anyway (opens a conflict for review)").is_hidden()
    clash.get_by_role("button", name="Move anyway (Admin override)").click()
    assert clash.locator("#clash-error").inner_text() == "An override needs a reason."
    moved.refresh_from_db()
    assert (moved.start, moved.version) == (ny(7, 13), 1)

    clash.get_by_label("Admin override reason").fill("Patient asked, therapist agreed")
    before = loads(page)
    clash.get_by_role("button", name="Move anyway (Admin override)").click()
    wait_reloaded(page, before)
    moved.refresh_from_db()
    assert (moved.start, moved.override_reason) == (ny(7, 10), "Patient asked, therapist agreed")
    assert (
        Conflict.objects.filter(status="open", kind="overlap", appointments=moved)
        .filter(appointments=scenario.confirmed)
        .exists()
    )
    entry = AuditLog.objects.filter(action="scheduler.appointment.rescheduled").get()
    assert entry.actor == admin_user and entry.details["override"] is True
    page.wait_for_selector(f".fc-event[data-appointment='{moved.pk}'] .flag")
    assert page.js_errors == []


def test_a_therapist_sees_only_their_own_appointments_in_month_week_and_day(
    open_page: Any, scenario: Scenario
) -> None:
    page = open_page("thea", "pw-thea-123", f"/calendar/?date={DATE}")
    assert page.locator(".fc-timeGridWeek-view").count() == 1  # week by default on a wide screen
    week = shown_ids(page)
    assert week == scenario.mine and scenario.theirs.pk not in week
    confirmed = event(page, scenario.confirmed.pk)
    assert "10:00 - 10:50" in confirmed.inner_text()  # her zone, New York
    assert confirmed.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(21, 128, 61)"
    assert page.locator(f".fc-event[data-busy='{scenario.busy.pk}']").inner_text().strip().endswith("Busy")
    assert event(page, scenario.clashing.pk).locator(".flag").count() == 1
    assert "Connect Google Calendar" in page.locator("#connections").inner_text()
    screenshot(page, "member-week")

    confirmed.click()
    details = page.locator("#details-dialog")
    assert "Mon 7 Dec 2026, 10:00–10:50 (America/New_York)" in details.inner_text()
    assert details.locator("[data-field=status]").inner_text() == "Confirmed"
    assert details.locator("[data-field=source]").inner_text() == "Hub"
    ics = details.get_by_role("link", name="Add to my calendar (.ics)")
    assert ics.get_attribute("href") == f"/api/v1/appointments/{scenario.confirmed.pk}/ical"
    response = page.request.get(ics.get_attribute("href"))
    assert response.ok and "BEGIN:VEVENT" in response.text()
    assert page.request.get(f"/api/v1/appointments/{scenario.theirs.pk}/").status == 404
    details.get_by_role("button", name="Close").click()

    before = loads(page)
    page.get_by_role("button", name="Month", exact=True).click()
    wait_reloaded(page, before)
    assert page.locator(".fc-dayGridMonth-view").count() == 1
    assert shown_ids(page) == scenario.mine
    screenshot(page, "member-month")

    page.get_by_role("button", name="Day", exact=True).click()
    assert page.locator(".fc-timeGridDay-view").count() == 1
    monday = {scenario.confirmed.pk, scenario.afternoon.pk, scenario.clashing.pk, scenario.external.pk}
    page.wait_for_function(
        f"() => document.querySelectorAll('.fc-event[data-appointment]').length === {len(monday)}"
    )
    assert shown_ids(page) == monday
    screenshot(page, "member-day")

    page.get_by_role("button", name="Next day").click()
    tuesday = set(Appointment.objects.filter(start__date="2026-12-08").values_list("pk", flat=True))
    assert len(tuesday) == 2  # the completed and the no-show
    page.wait_for_selector(".fc-timegrid-col[data-date='2026-12-08']")
    page.wait_for_function("() => document.querySelectorAll('.fc-event[data-appointment]').length === 2")
    assert shown_ids(page) == tuesday & scenario.mine
    assert page.js_errors == []

    phone = open_page("thea", "pw-thea-123", f"/calendar/?date={DATE}", width=375, height=740)
    assert phone.locator(".fc-timeGridDay-view").count() == 1  # day view by default on a phone
    assert shown_ids(phone) == monday
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling
    screenshot(phone, "member-phone-day")


def test_the_keyboard_reschedules_through_the_details_dialog_with_the_same_clash_check(
    open_page: Any, scenario: Scenario, frontdesk_user: Any
) -> None:
    page = open_page("fran", "pw-desk-123", f"/calendar/board/?date={DATE}")
    page.wait_for_function("() => document.getElementById('calendar-app').dataset.ready === 'true'")
    moved = scenario.afternoon
    event(page, moved.pk).focus()
    page.keyboard.press("Enter")
    dialog = page.locator("#details-dialog")
    dialog.wait_for()
    field = dialog.get_by_label("Reschedule to (America/New_York)")
    # Onto the busy block (Tue 11:00): the clash dialog, nothing changed.
    field.fill("2026-12-08T11:00")
    field.press("Enter")
    clash = page.locator("#clash-dialog")
    clash.wait_for()
    assert clash.locator(f"li[data-busy='{scenario.busy.pk}']").is_visible()
    clash.get_by_role("button", name="Keep original time").click()
    moved.refresh_from_db()
    assert (moved.start, moved.version) == (ny(7, 13), 1)
    # Into a free hour: moved through the API, the board reloads.
    event(page, moved.pk).focus()
    page.keyboard.press("Enter")
    dialog.wait_for()
    before = loads(page)
    field = dialog.get_by_label("Reschedule to (America/New_York)")
    field.fill("2026-12-09T10:00")
    field.press("Enter")
    wait_reloaded(page, before)
    moved.refresh_from_db()
    assert (moved.start, moved.end, moved.version) == (ny(9, 10), ny(9, 10, 50), 2)
    assert page.js_errors == []
