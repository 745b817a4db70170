from __future__ import annotations

from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """The hub's user. Roles are groups (see accounts.roles); per-therapist access is object permissions."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
