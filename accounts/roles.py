"""The three roles, as groups, and the model permissions each holds.

Deny by default: a role has exactly what is listed. Therapists hold no model-wide permission; they get
object permissions on their own Therapist (see scheduler.services.therapist_link_user).
"""

from __future__ import annotations

from typing import Any

ADMIN = "Admin"
FRONT_DESK = "Front desk"
THERAPIST = "Therapist"
ROLES = (ADMIN, FRONT_DESK, THERAPIST)

ALL = "__all__"
# app_label -> codenames ("view_x") or ALL (every permission of that app).
ROLE_PERMISSIONS: dict[str, dict[str, Any]] = {
    ADMIN: {ALL: ALL},
    FRONT_DESK: {
        "scheduler": ALL,
        "conflicts": ALL,
        # Sync state and the write queue are visible; credentials are never shown (see integrations.admin).
        "integrations": [
            "view_connection",
            "view_apiwritequeue",
            "retry_apiwritequeue",
            "view_externalrecord",
        ],
    },
    THERAPIST: {},
}


def user_has_role(user: Any, role: str) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if role == ADMIN and user.is_superuser:
        return True
    return user.groups.filter(name=role).exists()


def is_admin(user: Any) -> bool:
    return user_has_role(user, ADMIN)
