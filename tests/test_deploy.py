"""Production settings: secrets required, `check --deploy` clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet
from django.conf import settings


def _manage(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "PATIENT_REF_KEY", "AUDIT_HMAC_KEYS", "DEBUG")
    }
    clean.update(DJANGO_SETTINGS_MODULE="config.settings.base", HUB_VAR_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=settings.BASE_DIR, env=clean, capture_output=True, text=True
    )


def test_production_settings_pass_check_deploy(tmp_path):
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        tmp_path=tmp_path,
        DEBUG="false",
        SECRET_KEY="x" * 20 + Fernet.generate_key().decode(),
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        PATIENT_REF_KEY="k" * 32,
        AUDIT_HMAC_KEYS="k1:" + Fernet.generate_key().decode(),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_an_audit_chain_key(tmp_path):
    result = _manage(
        "check",
        tmp_path=tmp_path,
        DEBUG="false",
        SECRET_KEY="x" * 50,
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        PATIENT_REF_KEY="k" * 32,
    )
    assert result.returncode != 0 and "AUDIT_HMAC_KEYS must be set" in result.stderr


def test_production_refuses_to_start_without_secrets(tmp_path):
    result = _manage("check", tmp_path=tmp_path, DEBUG="false")
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_a_session_lifetime_over_12_hours_is_refused_at_start(tmp_path):
    result = _manage("check", tmp_path=tmp_path, DEBUG="true", SESSION_COOKIE_AGE=str(13 * 3600))
    assert result.returncode != 0 and "at most 12 hours" in result.stderr
