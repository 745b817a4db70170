from __future__ import annotations

from datetime import UTC, datetime, timedelta

import factory

from scheduler.models import Appointment, AppointmentStatus, SourceSystem


class AppointmentFactory(factory.django.DjangoModelFactory):
    """Direct rows for read-side tests; write-side tests go through the services."""

    class Meta:
        model = Appointment

    start = factory.Sequence(lambda n: datetime(2026, 12, 7, 14, tzinfo=UTC) + timedelta(hours=n))
    end = factory.LazyAttribute(lambda o: o.start + timedelta(minutes=50))
    timezone = factory.LazyAttribute(lambda o: o.therapist.timezone)
    status = AppointmentStatus.SCHEDULED
    source_system = SourceSystem.HUB
