"""No page breaks under the Content-Security-Policy (issue 12 #14): every page of every role is opened in
Chromium and any CSP violation (a blocked script, stylesheet, style or connection) fails the test."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

COLLECT = (
    "window.__csp = [];"
    "document.addEventListener('securitypolicyviolation',"
    " e => window.__csp.push("
    "[e.violatedDirective, e.blockedURI, e.sourceFile, e.lineNumber, e.sample].join(' ')));"
)

PAGES = [
    ("fran", "pw-desk-123", "/login/", "/calendar/board/", "#calendar .fc-view-harness"),
    ("thea", "pw-thea-123", "/login/", "/calendar/", "#calendar .fc-view-harness"),
    ("thea", "pw-thea-123", "/login/", "/integrations/google/", "h1"),
    ("ada", "pw-admin-123", "/admin/login/", "/admin/", "#content"),
    ("ada", "pw-admin-123", "/admin/login/", "/admin/scheduler/appointment/", "#changelist"),
    ("ada", "pw-admin-123", "/admin/login/", "/admin/scheduler/appointment/add/", "form"),
    ("ada", "pw-admin-123", "/admin/login/", "/api/v1/docs/", ".swagger-ui .info"),
]


@pytest.mark.parametrize(("username", "password", "login", "path", "ready"), PAGES)
def test_no_page_violates_the_content_security_policy(
    browser: Any,
    live_server: Any,
    admin_user,
    frontdesk_user,
    therapist_a,
    username,
    password,
    login,
    path,
    ready,
):
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(15_000)
    context.add_init_script(COLLECT)
    console: list[str] = []
    try:
        page = context.new_page()
        page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(f"{login}?next={path}")
        assert page.evaluate("window.__csp") == []  # the sign-in page itself
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.locator("[type=submit]").first.click()
        page.wait_for_url(f"**{path}")
        page.wait_for_selector(ready)
        page.wait_for_timeout(300)  # late style injections and fetches
        assert (page.evaluate("window.__csp"), console) == ([], [])
    finally:
        context.close()
