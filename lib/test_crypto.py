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
