"""The shared cast: an admin, a front-desk user, two therapists (with logins), and an outsider who must see
nothing. Loaded for every test directory through the root conftest."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from accounts.services import user_create
from scheduler.models import Office, Service, Therapist
from scheduler.services import therapist_create

WEEKDAYS_9_TO_5 = {d: ["09:00-17:00"] for d in ("monday", "tuesday", "wednesday", "thursday", "friday")}


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        skip = pytest.mark.skip(reason="needs PostgreSQL: runs in the PostgreSQL pass of `make test`")
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Each test starts with empty caches: throttle counters (anonymous: 30/min) and cached feeds from an
    earlier test must not decide this one."""
    from django.core.cache import caches

    for cache in caches.all():
        cache.clear()


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def admin_user(db: Any) -> Any:
    return user_create(actor=None, username="ada", password="pw-admin-123", role="Admin")


@pytest.fixture
def frontdesk_user(db: Any) -> Any:
    return user_create(actor=None, username="fran", password="pw-desk-123", role="Front desk")


@pytest.fixture
def outsider(db: Any) -> Any:
    from django.contrib.auth import get_user_model

    user = get_user_model()(username="oscar")
    user.set_password("pw-out-123")
    user.save()
    return user


@pytest.fixture
def office(db: Any) -> Office:
    return Office.objects.create(name="Main Street", timezone="America/New_York")


@pytest.fixture
def session_service(db: Any) -> Service:
    return Service.objects.create(name="Therapy session", durations=[50], buffer_after_minutes=10)


def _therapist(username: str, name: str, tz: str) -> Therapist:
    user = user_create(actor=None, username=username, password=f"pw-{username}-123", role="Therapist")
    return therapist_create(
        actor=None,
        name=name,
        email=f"{username}@example.test",
        timezone=tz,
        working_hours=WEEKDAYS_9_TO_5,
        user=user,
    )


@pytest.fixture
def therapist_a(db: Any) -> Therapist:
    return _therapist("thea", "Thea Alvarez", "America/New_York")


@pytest.fixture
def therapist_b(db: Any) -> Therapist:
    return _therapist("theo", "Theo Brandt", "Europe/Berlin")
