"""Writes for Google connections: connect (OAuth), choose the calendar, push channels, disconnect.

Each function owns its transaction and audits itself. They call Google through the connector (the channel
and the calendar list); a failure there raises ConnectorError and the caller shows it.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from scheduler.models import Therapist

from ..base import ConnectorError
from ..models import Connection
from ..services import connection_schedule
from .connector import GoogleCalendarConnector

logger = logging.getLogger(__name__)
CHANNEL_TTL = timedelta(days=7)
RENEW_BEFORE = timedelta(hours=24)


def google_connection_current(*, therapist: Therapist) -> Connection | None:
    """The therapist's Google connection: the newest one (older ones are retired accounts, kept for their
    history)."""
    return (
        Connection.objects.filter(platform="google", therapist=therapist).order_by("-created", "-pk").first()
    )


def google_account_of(tokens: dict[str, Any]) -> str:
    """Which Google account a consent's tokens belong to (one call to Google; no transaction open)."""
    probe = Connection(platform="google", credentials={**tokens, "calendar_id": "primary"})
    return GoogleCalendarConnector(probe).account_id()


def _stored_account(connection: Connection) -> str:
    # Rows connected before the account was recorded: their calendar id is the account's primary calendar.
    return str(
        (connection.config or {}).get("account") or (connection.credentials or {}).get("calendar_id", "")
    )


def google_connection_connect(
    *, actor: Any | None, therapist: Therapist, tokens: dict[str, Any], account: str | None = None
) -> Connection:
    """Store a completed consent. A reconnect of the same account reuses the therapist's connection (same
    ledger, same cursor, queued writes kept: nothing is duplicated). A consent for a different account, or
    after a disconnect, starts a clean connection: a new row with default settings and no calendar chosen;
    the old one is disconnected (channel stopped, tokens revoked) and kept, with its ledger, for history.

    ``account`` is the consenting Google account (asked of Google when not given)."""
    if account is None:
        account = google_account_of(tokens)
    current = google_connection_current(therapist=therapist)
    if current is not None and current.credentials and _stored_account(current) != account:
        google_connection_disconnect(actor=actor, connection=current)  # HTTP: before our transaction
    with transaction.atomic():
        connection = (
            Connection.objects.select_for_update()
            .filter(platform="google", therapist=therapist)
            .order_by("-created", "-pk")
            .first()
        )
        if connection is not None and not (connection.credentials and _stored_account(connection) == account):
            connection = None  # disconnected, or another account's: never reuse its settings or ledger
        created = connection is None
        if connection is None:
            connection = Connection(
                platform="google",
                therapist=therapist,
                display_name=f"Google Calendar: {therapist.name}",
                config={"account": account},
            )
        credentials = dict(connection.credentials or {})
        refresh_token = tokens.get("refresh_token") or credentials.get("refresh_token")
        if not refresh_token:
            raise ConnectorError("Google sent no refresh token; remove the hub's access and connect again.")
        credentials.update(
            refresh_token=refresh_token,
            access_token=tokens["access_token"],
            token_expiry=tokens.get("token_expiry", ""),
        )
        connection.credentials = credentials
        connection.status = Connection.Status.OK
        connection.last_error = ""
        connection.write_enabled = True
        connection.save()
        audit_record(
            actor=actor,
            action="integrations.connection.google_connected",
            target=connection,
            details={"therapist_id": therapist.pk, "reconnect": not created},  # no account: it is an email
        )
        connection_schedule(connection=connection)
    return connection


def google_calendars(*, connection: Connection) -> list[dict[str, Any]]:
    return GoogleCalendarConnector(connection).calendars()


def google_connection_choose_calendar(
    *, actor: Any | None, connection: Connection, calendar_id: str
) -> Connection:
    """Sync and write this calendar (one of the account's writable ones); starts its push channel."""
    calendars = {c["id"]: c for c in google_calendars(connection=connection)}
    if calendar_id not in calendars:
        raise ConnectorError(
            f"{calendar_id!r} is not one of this account's writable calendars.", permanent=True
        )
    with transaction.atomic():
        connection = Connection.objects.select_for_update().get(pk=connection.pk)
        credentials = dict(connection.credentials or {})
        changed = credentials.get("calendar_id") != calendar_id
        credentials["calendar_id"] = calendar_id
        connection.credentials = credentials
        if changed:
            connection.cursor = ""  # another calendar: a full read first
        connection.display_name = f"Google Calendar: {calendars[calendar_id]['summary']}"
        connection.save()
        audit_record(
            actor=actor,
            action="integrations.connection.google_calendar_chosen",
            target=connection,
            details={"changed": changed},
        )
    google_channel_start(connection=connection)
    if changed:
        google_connection_backfill(connection=connection)
    return connection


def google_connection_backfill(*, connection: Connection) -> int:
    """Queue the therapist's upcoming appointments for the newly chosen calendar (each written once: the
    queue's idempotency key and the deterministic event id make a repeat harmless)."""
    from scheduler.models import Appointment, AppointmentStatus

    from ..services import write_queue_enqueue

    upcoming = Appointment.objects.filter(
        therapist_id=connection.therapist_id,
        end__gt=timezone.now(),
        status__in=(AppointmentStatus.SCHEDULED, AppointmentStatus.CONFIRMED),
    ).exclude(connection=connection)
    count = 0
    with transaction.atomic():
        for appointment in upcoming.defer("raw").iterator():
            count += len(write_queue_enqueue(appointment=appointment, operation="create"))
    return count


def google_channel_start(*, connection: Connection) -> Connection:
    """Open a new push channel (then stop the old one, so no change falls between them)."""
    connector = GoogleCalendarConnector(connection)
    old = (connection.config or {}).get("channel")
    token = secrets.token_urlsafe(32)  # a new secret per channel: a leaked one dies with its channel
    channel = connector.watch(
        channel_id=str(uuid.uuid4()),
        token=token,
        address=f"{settings.HUB_BASE_URL.rstrip('/')}/webhooks/google/",
        ttl=CHANNEL_TTL,
    )
    with transaction.atomic():
        fresh = Connection.objects.select_for_update().get(pk=connection.pk)
        fresh.config = {**(fresh.config or {}), "channel": channel}
        fresh.credentials = {**(fresh.credentials or {}), "channel_token": token}
        fresh.save(update_fields=["config", "credentials", "updated"])
        audit_record(
            actor=None,
            action="integrations.connection.google_channel_started",
            target=fresh,
            details={"channel_id": channel["id"], "expiration": channel["expiration"]},
        )
    if old:
        try:
            connector.stop_channel(old)
        except ConnectorError as exc:  # it expires by itself; its notifications no longer verify
            logger.warning("Could not stop Google channel %s: %s", old.get("id"), exc.message)
    return fresh


def google_channels_renew(*, before: timedelta = RENEW_BEFORE) -> list[int]:
    """Renew every working connection's channel that expires within ``before`` (a beat task runs this)."""
    limit = int((datetime.now(UTC) + before).timestamp() * 1000)
    renewed = []
    for connection in Connection.objects.filter(platform="google", status=Connection.Status.OK):
        channel = (connection.config or {}).get("channel")
        if not (connection.credentials or {}).get("calendar_id") or (
            channel and int(channel.get("expiration") or 0) > limit
        ):
            continue
        try:
            google_channel_start(connection=connection)
            renewed.append(connection.pk)
        except ConnectorError as exc:  # polling goes on; the next run tries again
            logger.warning("Could not renew the Google channel of %s: %s", connection, exc.message)
    return renewed


def google_connection_disconnect(*, actor: Any | None, connection: Connection) -> Connection:
    """Stop the push channel, revoke and delete the tokens, stop syncing and writing. The connection row
    stays (its ledger and history); a reconnect reuses it."""
    from .oauth import revoke

    channel = (connection.config or {}).get("channel")
    credentials = connection.credentials or {}
    if channel and credentials.get("refresh_token"):
        try:
            GoogleCalendarConnector(connection).stop_channel(channel)
        except ConnectorError as exc:
            logger.warning("Could not stop Google channel %s: %s", channel.get("id"), exc.message)
    if credentials.get("refresh_token"):
        try:
            revoke(credentials["refresh_token"])
        except ConnectorError as exc:  # the tokens are deleted here either way
            logger.warning("Could not revoke the Google token of %s: %s", connection, exc.message)
    with transaction.atomic():
        connection = Connection.objects.select_for_update().get(pk=connection.pk)
        connection.credentials = None
        connection.config = {k: v for k, v in (connection.config or {}).items() if k != "channel"}
        connection.status = Connection.Status.PAUSED
        connection.write_enabled = False
        connection.last_error = "Disconnected."
        connection.updated = timezone.now()
        connection.save()
        audit_record(
            actor=actor,
            action="integrations.connection.google_disconnected",
            target=connection,
            details={"channel_stopped": bool(channel)},
        )
        connection_schedule(connection=connection)
    return connection
