"""Writes for accounts: role groups and their permissions, role assignment."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record

from .roles import ALL, ROLE_PERMISSIONS, ROLES


def roles_sync_permissions() -> None:
    """Create the role groups if missing and set each group's permissions to exactly its table entry."""
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        wanted = Permission.objects.none()
        for app_label, codenames in ROLE_PERMISSIONS[role].items():
            if app_label == ALL:
                wanted = Permission.objects.all()
                break
            perms = Permission.objects.filter(content_type__app_label=app_label)
            if codenames != ALL:
                perms = perms.filter(codename__in=codenames)
            wanted = wanted | perms
        group.permissions.set(wanted.distinct())


def user_create(
    *, actor: Any | None, username: str, password: str | None, role: str, email: str = "", **extra: Any
) -> Any:
    """Create a user in one role. Admin and Front desk are staff (they use the admin site)."""
    if role not in ROLES:
        raise ValueError(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}.")
    User = get_user_model()
    with transaction.atomic():
        user = User(username=username, email=email, is_staff=role in ("Admin", "Front desk"), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save()
        user.groups.add(Group.objects.get(name=role))
        audit_record(actor=actor, action="accounts.user.created", target=user, details={"role": role})
    return user


def api_token_issue(*, actor: Any | None, user: Any) -> tuple[str, Any]:
    """A new API token for `user` (stored hashed; the key is shown once). Returns (key, expiry)."""
    from knox.models import AuthToken

    with transaction.atomic():
        instance, token = AuthToken.objects.create(user=user)
        audit_record(
            actor=actor,
            action="accounts.api_token.issued",
            target=user,
            details={"token_prefix": instance.token_key[:8], "expiry": str(instance.expiry)},
        )
    return token, instance.expiry


def idempotency_keys_purge(*, now: datetime | None = None) -> int:
    """Delete Idempotency-Key records past IDEMPOTENCY_KEY_TTL_HOURS (their replay data is PHI-bearing)."""
    from .models import IdempotencyKey

    cutoff = (now or timezone.now()) - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    with transaction.atomic():
        deleted, _ = IdempotencyKey.objects.filter(created__lt=cutoff).delete()
        if deleted:
            audit_record(
                actor=None,
                action="accounts.idempotency_key.purged",
                details={"count": deleted, "before": cutoff.isoformat()},
            )
    return deleted


def api_tokens_revoke(*, actor: Any | None, user: Any, token: Any | None = None, reason: str) -> int:
    """Revoke one of the user's API tokens (`token`, a knox AuthToken) or, without it, all of them. Audited
    by prefix only. Returns how many were revoked."""
    from knox.models import AuthToken

    with transaction.atomic():
        tokens = AuthToken.objects.filter(user=user)
        if token is not None:
            tokens = tokens.filter(pk=token.pk)
        prefixes = sorted(t[:8] for t in tokens.values_list("token_key", flat=True))
        count, _ = tokens.delete()
        if prefixes:
            audit_record(
                actor=actor,
                action="accounts.api_token.revoked",
                target=user,
                details={"token_prefixes": prefixes, "reason": reason},
            )
    return len(prefixes) if count else 0
