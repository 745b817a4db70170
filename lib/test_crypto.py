from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from lib.crypto import decrypt_str, encrypt_str, rotate_token


def test_values_encrypted_under_an_older_key_still_decrypt_and_rotate_to_the_newest(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    token = encrypt_str("secret")
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    assert decrypt_str(token) == "secret"
    rotated = rotate_token(token)
    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert decrypt_str(rotated) == "secret"
    with pytest.raises(ImproperlyConfigured, match="cannot be decrypted"):
        decrypt_str(token)


def test_a_malformed_key_is_a_clear_configuration_error(settings):
    settings.FIELD_ENCRYPTION_KEYS = ["not-a-key"]
    with pytest.raises(ImproperlyConfigured, match="Fernet keys"):
        encrypt_str("x")


def test_rotate_encryption_keys_lets_the_old_key_be_removed(db, settings, capsys):
    from django.core.management import call_command

    from integrations.models import Connection
    from scheduler.models import Patient
    from scheduler.services import patient_create

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    patient = patient_create(actor=None, name="Rhea Rotate", email="rr@example.com")
    conn = Connection.objects.create(platform="zocdoc", display_name="Z", credentials={"client_secret": "s"})
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_encryption_keys")
    assert "scheduler.Patient.name: 1 re-encrypted" in capsys.readouterr().out
    settings.FIELD_ENCRYPTION_KEYS = [new]  # the old key is gone; everything still reads
    assert Patient.objects.get(pk=patient.pk).name == "Rhea Rotate"
    assert Connection.objects.get(pk=conn.pk).credentials == {"client_secret": "s"}
