"""The connector interface: the one extension point between the hub and an external platform.

A connector talks to the outside world and never writes our database. The sync service calls it and
applies what it returns (integrations.services.sync_apply). To add a platform:

1. Create ``integrations/<platform>/connector.py`` with a subclass of :class:`Connector`.
2. Register it in ``integrations/registry.py`` (``CONNECTORS = {"<platform>": "dotted.path.Class"}``).
3. Ship an emulator of the platform's real API and contract tests against it over real HTTP.

Contract, in short:

* :meth:`Connector.fetch` returns every change since ``cursor`` (or, when ``cursor`` is None or the
  platform declared it expired, a complete read of ``window``), following pagination to the end. It
  returns the new cursor; the caller stores it only after the batch was applied.
* Deletions are only ever reported when the platform said so authoritatively: an
  :class:`ExternalEvent` with ``deleted=True`` (a tombstone, a cancelled status, a 404/410 on a direct
  read), or ``FetchResult.complete_window`` when the fetch was a full read of that window, so that what is
  missing from it is gone. Timeouts, 5xx, auth and parse errors raise :class:`ConnectorError` and change
  nothing.
* Errors say whether retrying can help (``permanent``), whether a human must re-authorise
  (:class:`ConnectorAuthError`), and how long to wait (``retry_after``, from the platform's header).
* Patient keys are returned raw in ``patient_key``; the hub pseudonymises them before storing, and never
  stores names. ``raw`` is stored encrypted, for audit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from django.http import HttpRequest

    from .models import APIWriteQueue, Connection


class ConnectorError(Exception):
    """A platform call failed. ``permanent``: retrying the same call cannot succeed."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after


class ConnectorAuthError(ConnectorError):
    """Credentials were refused and refreshing cannot fix it: the connection needs re-authorisation."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


class ConnectorConfigError(ConnectorError):
    """The connection is misconfigured (missing provider mapping, unknown calendar ...)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


class CursorExpired(ConnectorError):
    """The incremental cursor is no longer valid (Google 410, Graph 410): re-read the window in full."""

    def __init__(self, message: str = "The sync cursor expired.") -> None:
        super().__init__(message, permanent=False)


@dataclass(frozen=True, slots=True)
class ExternalEvent:
    """One appointment (or busy time) as the platform reports it, normalised to the hub's vocabulary."""

    external_id: str
    start: datetime | None = None  # aware; None only for tombstones
    end: datetime | None = None
    status: str = "scheduled"  # a scheduler.models.AppointmentStatus value
    provider_key: str = ""  # the platform's id for the therapist (mapped through the connection's config)
    patient_key: str = ""  # the platform's raw patient key; pseudonymised by the hub, never stored raw
    type: str = "consult"  # a scheduler.models.AppointmentType value
    location_key: str = ""
    version: str = ""  # etag / version / last-modified stamp: newer replaces older, never the reverse
    deleted: bool = False  # an authoritative "gone" from the platform
    busy_only: bool = False  # external busy time rather than an appointment (calendars)
    recurrence_id: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
    # The hub appointment this event is the projection of (the hub wrote it: Google's private extended
    # property, an X- property in iCalendar). Such events update that appointment, never create one.
    hub_uid: str = ""


@dataclass(frozen=True, slots=True)
class FetchResult:
    events: list[ExternalEvent]
    cursor: str | None = None  # store after applying; None keeps the previous one
    # Set when this fetch read everything in the window: ledger entries in the window not returned are gone.
    complete_window: tuple[datetime, datetime] | None = None
    # Per-record problems (one unreadable appointment must not fail the whole sync): "<external id>: why".
    # They are counted in the run's errors; the rest of the batch is applied. A record that cannot be read
    # is never treated as deleted, even in a complete read (its id goes in ``unreadable_ids``).
    errors: list[str] = field(default_factory=list)
    unreadable_ids: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class PushResult:
    external_id: str
    version: str = ""


def deterministic_event_id(uid: str) -> str:
    """The external event id of a hub appointment: base32hex (RFC 4648 §7, lowercase, unpadded) of its
    UUID's bytes. Valid as a Google event id (a-v, 0-9, 5-1024 chars) and a CalDAV resource name, and the
    same on every retry, so a create the platform already accepted is found, not duplicated."""
    import base64
    import uuid

    return base64.b32hexencode(uuid.UUID(uid).bytes).decode().rstrip("=").lower()


class Connector:
    """Base class of every platform connector. Subclasses set the class attributes and override methods."""

    platform: ClassVar[str] = ""
    #: The platform's minimum polling interval (e.g. Kareo/Tebra: 5 minutes).
    min_sync_interval: ClassVar[timedelta] = timedelta(minutes=5)
    #: Whether the hub may write appointments to this platform (two-way calendars).
    supports_write: ClassVar[bool] = False
    #: The write budget per connection: at most this many pushes a minute, whatever the number of workers
    #: (a connection's ``config["write_rate_per_minute"]`` may lower or raise it).
    write_rate_per_minute: ClassVar[int] = 60

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def fetch(self, *, cursor: str | None, window: tuple[datetime, datetime]) -> FetchResult:
        """Changes since ``cursor``, or a complete read of ``window`` when ``cursor`` is None."""
        raise NotImplementedError

    def push(self, job: APIWriteQueue) -> PushResult:
        """Create, update or delete the external event for ``job.appointment``, idempotently.

        ``job.operation`` is create / update / delete; ``job.payload`` is the PHI-free projection
        (integrations.services.appointment_projection). The event's id must be derived from
        ``job.payload["uid"]`` (deterministic), so that a create retried after a timeout the platform had
        in fact accepted finds the event instead of making a second one ("already exists" is success); an
        update of a missing event creates it; a delete of a missing event succeeds. Raise
        :class:`ConnectorError` (with ``retry_after`` when the platform says) for what a retry can fix,
        ``permanent=True`` for what it cannot, :class:`ConnectorAuthError` when credentials are refused.
        """
        raise ConnectorError(f"{self.platform} does not accept writes from the hub.", permanent=True)

    def parse_webhook(self, request: HttpRequest) -> list[str]:
        """Verify the request's signature or token *before* parsing; return the event ids it announces.

        Raise :class:`ConnectorAuthError` for a bad signature. Unknown event types return [] (acknowledged
        and ignored).
        """
        raise ConnectorError(f"{self.platform} has no webhooks.", permanent=True)

    def refreshed_tokens(self) -> dict[str, Any] | None:
        """Credentials the connector renewed during this run (an OAuth access token and its expiry), for the
        hub to store encrypted so the next run does not refresh again; None when nothing changed."""
        return None

    @classmethod
    def webhook_connection_filter(cls, request: HttpRequest) -> dict[str, Any] | None:
        """Lookups that narrow the connections a delivery may belong to (e.g. Google names its channel in a
        header); None: try every connection of the platform until one verifies the signature."""
        return None

    @classmethod
    def webhook_delivery_id(cls, request: HttpRequest) -> str:
        """What identifies one delivery, so a redelivery is acknowledged once: by default the body's hash."""
        return hashlib.sha256(request.body).hexdigest()
