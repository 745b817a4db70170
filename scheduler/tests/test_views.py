"""Who may open the calendar pages (the pages' behaviour is tested in a browser: tests/browser/)."""

from __future__ import annotations

from django.test import Client


def signed_in(username: str, password: str) -> Client:
    client = Client()
    response = client.post("/login/", {"username": username, "password": password})
    assert response.status_code == 302, response.content
    return client


def test_anonymous_visitors_are_sent_to_the_sign_in_page(db):
    for path in ("/calendar/", "/calendar/board/"):
        response = Client().get(path)
        assert response.status_code == 302 and response["Location"] == f"/login/?next={path}"


def test_a_therapist_signs_in_and_gets_their_own_calendar_but_not_the_board(therapist_a):
    client = signed_in("thea", "pw-thea-123")
    page = client.get("/calendar/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-therapist="{therapist_a.pk}"' in html and 'data-timezone="America/New_York"' in html
    assert "vendor/fullcalendar/index.global.min.js" in html
    assert client.get("/calendar/board/").status_code == 403


def test_staff_without_a_therapist_profile_go_to_the_board(frontdesk_user, admin_user):
    client = signed_in("fran", "pw-desk-123")
    assert client.get("/calendar/")["Location"] == "/calendar/board/"
    board = client.get("/calendar/board/")
    assert board.status_code == 200 and 'data-admin="false"' in board.content.decode()
    admin = signed_in("ada", "pw-admin-123")
    assert 'data-admin="true"' in admin.get("/calendar/board/").content.decode()
    assert 'href="/calendar/board/"' in admin.get("/admin/").content.decode()  # reachable from the admin


def test_a_user_with_no_role_sees_no_calendar_and_no_board(outsider):
    client = signed_in("oscar", "pw-out-123")
    page = client.get("/calendar/")
    assert page.status_code == 200 and "not linked to a therapist" in page.content.decode()
    assert client.get("/calendar/board/").status_code == 403


def test_a_wrong_password_is_refused_on_the_sign_in_page(therapist_a):
    response = Client().post("/login/", {"username": "thea", "password": "wrong"})
    assert response.status_code == 200 and "didn't match" in response.content.decode()


def test_the_home_page_sends_each_role_to_its_start_page(client, frontdesk_user, therapist_a):
    assert client.get("/")["Location"].startswith("/login/")
    client.force_login(frontdesk_user)
    assert client.get("/")["Location"] == "/admin/"
    client.force_login(therapist_a.user)
    assert client.get("/")["Location"] == "/calendar/"
