"""Test overrides: deterministic secrets, eager tasks, fast hashing. The database comes from DATABASE_URL
(PostgreSQL run) or defaults to SQLite; the SQLite test database is a file so that a real Celery worker
process started by a test can open it too."""

from __future__ import annotations

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
# Two keys, newest first, so rotation is exercised by the suite.
os.environ.setdefault(
    "FIELD_ENCRYPTION_KEYS",
    "rWw1b4b6gfpTzhkk0yqkkC0vEYb1bSeqI7yEF4Jz0Ks=,8F1s2L1lF2E5p4xV9yJ3Yc7cF6uQ0r1Wn0Yb0o6QyqE=",
)

os.environ.setdefault("PATIENT_REF_KEY", "test-patient-ref-key")
os.environ.setdefault("DEMO_SECRET", "test-demo-secret")
# Two audit chain keys, newest first, so verification of entries under a retired key is exercised.
os.environ.setdefault(
    "AUDIT_HMAC_KEYS",
    "test2:dGVzdC1hdWRpdC1rZXktdHdvLTAxMjM0NTY3ODlhYmNkZWY=,test1:dGVzdC1hdWRpdC1rZXktb25lLTAxMjM0NTY3ODlhYmNkZWZn",
)

from .base import *  # noqa: E402,F403
from .base import DATABASES, VAR_DIR  # noqa: E402

SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

# "platform=dotted.path,...": the write-queue tests point a writable platform at a recording calendar,
# for this process and the worker processes they start.
CONNECTOR_OVERRIDES = dict(
    item.split("=", 1) for item in os.environ.get("HUB_TEST_CONNECTORS", "").split(",") if "=" in item
)
