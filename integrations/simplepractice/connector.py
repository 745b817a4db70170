"""SimplePractice: no public API; clinicians publish their calendar as an .ics subscription feed
(platforms.md §7), which is read through the generic feed path (integrations.ics_feed).

What SimplePractice puts in an event's title is not documented [unknown]: practices choose initials, full
names, or a generic label, and time blocked from a synced personal calendar shows as "Busy". So:

* "Busy" (any case) is busy time, not an appointment;
* any other title is a patient key — normalised (case, spacing and punctuation dropped) and handed to the
  hub, which stores only its keyed-hash pseudonym (integrations.services.patient_pseudonym). Neither the
  title nor the description is ever stored. The key is low-confidence: "J.D." and "Jane Doe" are the same
  person but two keys, and two patients with the same initials share one;
* generic titles ("Appointment", "Session", "Client", empty) give no patient key.
"""

from __future__ import annotations

import re

from ..ics_feed.connector import IcsFeedConnector

GENERIC_TITLES = {"", "appointment", "session", "client", "clientappointment", "therapysession"}
BUSY_TITLES = {"busy"}


def normalised_title(title: str) -> str:
    return re.sub(r"[\W_]+", "", title.casefold())


class SimplePracticeConnector(IcsFeedConnector):
    platform = "simplepractice"
    event_type = "consult"

    def is_busy(self, title: str) -> bool:
        return normalised_title(title) in BUSY_TITLES

    def patient_key(self, title: str) -> str:
        key = normalised_title(title)
        return "" if key in GENERIC_TITLES or key in BUSY_TITLES else key
