"""Encryption at rest for PHI and credentials: MultiFernet over FIELD_ENCRYPTION_KEYS (newest first).

Why our own ~60 lines instead of a package: the maintained Django field packages either lack key rotation
or pin old Django versions; `cryptography`'s MultiFernet already does the hard part (authenticated
encryption, decrypt with any key, `rotate()` re-encrypts under the newest).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@lru_cache(maxsize=4)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty.")
    try:
        return MultiFernet([Fernet(k.strip().encode()) for k in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS must be comma-separated Fernet keys (32 url-safe base64-encoded bytes)."
        ) from exc


def fernet() -> MultiFernet:
    return _fernet_for(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt_str(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt_str(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "An encrypted value cannot be decrypted with any key in FIELD_ENCRYPTION_KEYS "
            "(was an old key removed before `manage.py rotate_encryption_keys` ran?)."
        ) from exc


def rotate_token(token: str) -> str:
    """Re-encrypt a stored token under the newest key."""
    return fernet().rotate(token.encode()).decode()


class _EncryptedMixin:
    """Stores ciphertext; the Python value is plaintext. Ciphertext is random, so no lookups but isnull."""

    def get_internal_type(self) -> str:
        return "TextField"

    def get_lookup(self, lookup_name: str):  # type: ignore[no-untyped-def]
        if lookup_name != "isnull":
            return None  # Django then raises FieldError: "Unsupported lookup ..."
        return super().get_lookup(lookup_name)  # type: ignore[misc]


class EncryptedTextField(_EncryptedMixin, models.TextField):
    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        return None if value is None else decrypt_str(value)

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return encrypt_str(str(value))


class EncryptedJSONField(_EncryptedMixin, models.TextField):
    """A JSON document (dict/list) encrypted as a whole: tokens, raw source payloads."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        return None if value is None else json.loads(decrypt_str(value))

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return encrypt_str(json.dumps(value, sort_keys=True, default=str))

    def value_to_string(self, obj: models.Model) -> str:
        return json.dumps(self.value_from_object(obj), default=str)


def encrypted_columns() -> list[tuple[type[models.Model], str]]:
    """Every (model, field name) stored encrypted, found from the field classes."""
    from django.apps import apps

    return [
        (model, field.name)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, _EncryptedMixin)
    ]


def rotate_all(batch: int = 500) -> dict[str, int]:
    """Re-encrypt every stored value under the newest key (raw column values; the plaintext never leaves
    the function). Returns the number of values rewritten per column."""
    from django.db import connection, transaction

    counts: dict[str, int] = {}
    qn = connection.ops.quote_name
    for model, name in encrypted_columns():
        column = model._meta.get_field(name).column
        table, pk = model._meta.db_table, model._meta.pk.column
        done, last = 0, None
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                where = f"WHERE {qn(pk)} > %s " if last is not None else ""
                cursor.execute(
                    f"SELECT {qn(pk)}, {qn(column)} FROM {qn(table)} {where}"
                    f"ORDER BY {qn(pk)} LIMIT {int(batch)}",
                    [last] if last is not None else [],
                )
                rows = cursor.fetchall()
                if not rows:
                    break
                updates = [(rotate_token(value), key) for key, value in rows if value is not None]
                cursor.executemany(f"UPDATE {qn(table)} SET {qn(column)} = %s WHERE {qn(pk)} = %s", updates)
                done += len(updates)
                last = rows[-1][0]
        counts[f"{model._meta.label}.{name}"] = done
    return counts
