"""API tokens can be revoked: logout, logout-all, DELETE /auth/token/, and automatically on a password change
or a deactivation, on every path (issue 12 #8)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.services import api_token_issue
from audit.models import AuditLog
from tests.test_api import API, assert_error


def _client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def _works(token: str) -> bool:
    return _client(token).get(f"{API}/therapists/").status_code == 200


@pytest.mark.parametrize("how", ["logout", "delete"])
def test_logout_revokes_only_the_token_used(frontdesk_user, how):
    one, _ = api_token_issue(actor=None, user=frontdesk_user)
    two, _ = api_token_issue(actor=None, user=frontdesk_user)
    client = _client(one)
    response = client.post(f"{API}/auth/logout/") if how == "logout" else client.delete(f"{API}/auth/token/")
    assert response.status_code == 200 and response.json() == {"revoked": 1}
    assert not _works(one) and _works(two)
    entry = AuditLog.objects.get(action="accounts.api_token.revoked")
    assert entry.details["reason"] == "logout" and one not in str(entry.details)


def test_logout_all_revokes_every_token_of_the_user_and_no_one_elses(frontdesk_user, admin_user):
    mine = [api_token_issue(actor=None, user=frontdesk_user)[0] for _ in range(3)]
    theirs, _ = api_token_issue(actor=None, user=admin_user)
    response = _client(mine[0]).post(f"{API}/auth/logout-all/")
    assert response.json() == {"revoked": 3}
    assert not any(_works(t) for t in mine) and _works(theirs)


def test_logout_without_a_token_is_401(db):
    assert_error(APIClient().post(f"{API}/auth/logout/"), 401, "not_authenticated")
    assert_error(APIClient().delete(f"{API}/auth/token/"), 401, "not_authenticated")


def test_a_password_change_revokes_every_token_on_every_path(frontdesk_user, admin_user, client, monkeypatch):
    # 1. set_password + save (a service, a shell)
    token, _ = api_token_issue(actor=None, user=frontdesk_user)
    frontdesk_user.set_password("a-new-password-1")
    frontdesk_user.save()
    assert not _works(token)
    # 2. manage.py changepassword
    token, _ = api_token_issue(actor=None, user=frontdesk_user)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "another-pass-2!")
    call_command("changepassword", "fran")
    assert not _works(token)
    # 3. the admin's password form
    token, _ = api_token_issue(actor=None, user=frontdesk_user)
    client.force_login(admin_user)
    response = client.post(
        f"/admin/accounts/user/{frontdesk_user.pk}/password/",
        {"password1": "third-pass-3!x", "password2": "third-pass-3!x", "usable_password": "true"},
    )
    assert response.status_code == 302, response.content.decode()[:800]
    assert not _works(token)
    reasons = list(
        AuditLog.objects.filter(action="accounts.api_token.revoked").values_list("details__reason", flat=True)
    )
    assert reasons == ["password_changed"] * 3


def test_an_unrelated_save_keeps_the_tokens(frontdesk_user):
    token, _ = api_token_issue(actor=None, user=frontdesk_user)
    frontdesk_user.first_name = "Fran"
    frontdesk_user.save()
    frontdesk_user.save(update_fields=["last_login"])
    assert _works(token)


def test_deactivation_revokes_every_token(frontdesk_user):
    token, _ = api_token_issue(actor=None, user=frontdesk_user)
    frontdesk_user.is_active = False
    frontdesk_user.save()
    assert not AuthToken.objects.filter(user=frontdesk_user).exists()
    assert not _works(token)


def test_the_admin_lists_a_users_tokens_by_prefix_and_revokes_them(frontdesk_user, admin_user, client):
    token, _ = api_token_issue(actor=None, user=frontdesk_user)
    client.force_login(admin_user)
    page = client.get(f"/admin/accounts/user/{frontdesk_user.pk}/change/").content.decode()
    assert f"{token[:8]}…" in page and token not in page
    response = client.post(
        "/admin/accounts/user/", {"action": "revoke_api_tokens", "_selected_action": [frontdesk_user.pk]}
    )
    assert response.status_code == 302
    assert not _works(token)
