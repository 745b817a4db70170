"""The connections admin: credentials are write-only for Admins and invisible to the front desk."""

from __future__ import annotations

import pytest

from audit.models import AuditLog
from integrations.models import Connection


@pytest.fixture
def zocdoc(therapist_a):
    return Connection.objects.create(
        platform="zocdoc",
        display_name="Zocdoc",
        status="needs_reauth",
        credentials={"client_id": "hub", "client_secret": "old-very-secret"},
        config={"provider_map": {"pr_1": therapist_a.pk}},
    )


def form_data(connection, **extra):
    return {
        "platform": connection.platform,
        "display_name": connection.display_name,
        "config": '{"provider_map": {}}',
        "sync_interval_minutes": "15",
        "runs-TOTAL_FORMS": "0",
        "runs-INITIAL_FORMS": "0",
        **extra,
    }


def test_an_admin_sets_credentials_without_ever_seeing_them(client, admin_user, zocdoc):
    client.force_login(admin_user)
    url = f"/admin/integrations/connection/{zocdoc.pk}/change/"
    page = client.get(url).content.decode()
    assert "old-very-secret" not in page and "Keys held now: client_id, client_secret" in page
    response = client.post(
        url, form_data(zocdoc, new_credentials='{"client_secret": "new-secret", "client_id": null}')
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    zocdoc.refresh_from_db()
    assert zocdoc.credentials == {"client_secret": "new-secret"} and zocdoc.status == "ok"
    entry = AuditLog.objects.get(action="integrations.connection.credentials_set")
    assert entry.details == {"names": ["client_id", "client_secret"], "removed": ["client_id"]}
    assert "new-secret" not in str(AuditLog.objects.values_list("details", flat=True))


def test_bad_credentials_input_is_refused_and_changes_nothing(client, admin_user, zocdoc):
    client.force_login(admin_user)
    url = f"/admin/integrations/connection/{zocdoc.pk}/change/"
    for bad in ("{not json", '["a", "list"]'):
        response = client.post(url, form_data(zocdoc, new_credentials=bad))
        assert response.status_code == 200 and "errorlist" in response.content.decode()
    zocdoc.refresh_from_db()
    assert zocdoc.credentials["client_secret"] == "old-very-secret"


def test_the_front_desk_sees_status_but_no_credential_field(client, frontdesk_user, zocdoc):
    client.force_login(frontdesk_user)
    page = client.get(f"/admin/integrations/connection/{zocdoc.pk}/change/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Needs re-authorisation" in body
    assert "old-very-secret" not in body and "Set credentials" not in body and "client_secret" not in body
