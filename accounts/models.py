from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractUser
from django.db import models

from lib.crypto import EncryptedJSONField


class User(AbstractUser):
    """The hub's user. Roles are groups (see accounts.roles); per-therapist access is object permissions."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """A password change or a deactivation revokes every API token of the user, on every path that
        saves a user (admin, `changepassword`, services, a shell). This is the one rule kept in save(): it
        is a security invariant no caller may forget, and Django offers no password-changed signal."""
        from django.db import transaction

        fields = kwargs.get("update_fields")
        relevant = fields is None or {"password", "is_active"} & set(fields)
        password_changed = self._password is not None  # set by set_password() until saved
        deactivated = False
        if relevant and self.pk is not None and not self.is_active:
            deactivated = type(self).objects.filter(pk=self.pk, is_active=True).exists()
        with transaction.atomic():
            super().save(*args, **kwargs)
            if self.pk is not None and (password_changed or deactivated) and relevant:
                from .services import api_tokens_revoke

                api_tokens_revoke(
                    actor=None,
                    user=self,
                    reason="deactivated" if deactivated else "password_changed",
                )


class IdempotencyKey(models.Model):
    """A creating request's first response, replayed for a retry with the same Idempotency-Key.

    The response can carry PHI (a created patient's name, date of birth, email, phone), so it is stored
    encrypted (re-encrypted by rotate_encryption_keys); the request itself only as a hash. Keys expire after
    IDEMPOTENCY_KEY_TTL_HOURS (24, as Stripe's do) and are purged by the beat task idempotency_keys_purge.
    """

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    status_code = models.PositiveSmallIntegerField(null=True)
    body = EncryptedJSONField(null=True)
    headers = models.JSONField(default=dict)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"
