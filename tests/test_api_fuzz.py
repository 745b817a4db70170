"""Property-based fuzzing of /api/v1/ against its own OpenAPI schema (schemathesis, in-process WSGI):
no 5xx, and every response conforms to the schema (status codes, content types, bodies)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from accounts.services import api_token_issue
from config.wsgi import application
from integrations.models import Connection
from integrations.services import external_appointment_upsert
from scheduler.services import appointment_book

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", application)

SLOT = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


@pytest.fixture
def in_process_wsgi():
    """Like Django's test client: requests must not close the test's connection (and its transaction)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_token(in_process_wsgi, admin_user, therapist_a, session_service, office):
    """An admin (sees and may do everything) over a small practice with a conflict to find."""
    appointment_book(
        actor=admin_user,
        therapist=therapist_a,
        start=SLOT,
        end=SLOT + timedelta(minutes=50),
        service=session_service,
    )
    zocdoc = Connection.objects.create(platform="zocdoc", display_name="Zocdoc")
    external_appointment_upsert(
        connection=zocdoc,
        external_id="z1",
        therapist_id=therapist_a.pk,
        start=SLOT,
        end=SLOT + timedelta(minutes=30),
    )
    token, _ = api_token_issue(actor=None, user=admin_user)
    return token


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_api_conforms_to_its_schema_and_never_fails_with_5xx(case, fuzz_token):
    # Valid-by-schema is not valid-by-business-rule (start < end, known ids, no clash), so a 4xx for
    # schema-valid data is allowed; every other check (no 5xx, conformance, content types) applies.
    case.call_and_validate(
        headers={"Authorization": f"Token {fuzz_token}"}, excluded_checks=[positive_data_acceptance]
    )
