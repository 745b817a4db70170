from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from conflicts.models import Conflict, ConflictKind
from scheduler.demo import DEMO_LOGINS, demo_seed
from scheduler.models import Appointment, Office, Patient, SourceSystem, Therapist

TODAY = date(2026, 11, 23)


def _counts() -> dict[str, object]:
    return {
        "offices": Office.objects.count(),
        "therapists": Therapist.objects.count(),
        "patients": Patient.objects.count(),
        "appointments": Appointment.objects.count(),
        "conflicts": Conflict.objects.count(),
        "users": get_user_model().objects.count(),
    }


@pytest.mark.django_db
def test_seed_demo_builds_the_practice_once():
    summary = demo_seed(today=TODAY)

    assert not summary.already_seeded
    assert Office.objects.count() == 2
    assert Therapist.objects.count() == 6
    assert Therapist.objects.values("timezone").distinct().count() >= 2
    assert all(t.working_hours and t.offices.exists() for t in Therapist.objects.all())
    assert Patient.objects.count() >= 15

    User = get_user_model()
    for role, username, _, _, therapist_index in DEMO_LOGINS:
        user = User.objects.get(username=username)
        assert list(user.groups.values_list("name", flat=True)) == [role]
        if therapist_index is not None:
            assert Therapist.objects.filter(user=user).exists()

    sources = set(Appointment.objects.values_list("source_system", flat=True))
    assert SourceSystem.HUB in sources and len(sources - {SourceSystem.HUB}) >= 3
    first, last = Appointment.objects.order_by("start").first(), Appointment.objects.order_by("start").last()
    assert last.start - first.start >= timedelta(days=25)
    assert summary.appointments == {s: Appointment.objects.filter(source_system=s).count() for s in sources}

    open_kinds = set(Conflict.objects.filter(status=Conflict.Status.OPEN).values_list("kind", flat=True))
    assert {
        ConflictKind.OVERLAP,
        ConflictKind.OUTSIDE_HOURS,
        ConflictKind.DUPLICATE,
        ConflictKind.PATIENT_OVERLAP,
    } <= open_kinds
    assert 5 <= sum(summary.open_conflicts.values()) <= 8
    assert Appointment.objects.exclude(override_reason="").count() == 1

    names = [p.name.lower() for p in Patient.objects.all()]
    for a in Appointment.objects.all():
        text = f"{a.patient_ref} {json.dumps(a.raw)}".lower()
        assert not any(n in text for n in names), a.pk

    before = _counts()
    again = demo_seed(today=TODAY + timedelta(days=3))
    assert again.already_seeded
    assert _counts() == before
    assert (again.appointments, again.open_conflicts) == (summary.appointments, summary.open_conflicts)


@pytest.mark.django_db
def test_seeding_is_refused_without_debug_unless_forced(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG is off"):
        call_command("seed_demo", "--today", TODAY.isoformat())
    assert not Appointment.objects.exists()


@pytest.mark.django_db
def test_demo_logins_authenticate_after_a_reseed(capsys, settings):
    settings.DEBUG = True
    call_command("seed_demo", "--today", TODAY.isoformat())
    User = get_user_model()
    User.objects.filter(username="frontdesk").update(is_active=False)
    admin = User.objects.get(username="admin")
    admin.set_unusable_password()
    admin.save()

    call_command("seed_demo", "--today", TODAY.isoformat(), "--allow-without-debug")
    out = capsys.readouterr().out
    assert "already seeded" in out and "Demo logins (http://127.0.0.1:8000/admin/):" in out

    for _, username, password, _, _ in DEMO_LOGINS:
        assert password in out
        request = RequestFactory().post("/admin/login/")
        user = authenticate(request=request, username=username, password=password)
        assert user is not None and user.username == username
