"""Settings for every environment, read from the environment (django-environ) with safe local defaults.

Embedded default: SQLite and a filesystem Celery broker under var/. Production: set DATABASE_URL
(PostgreSQL) and CELERY_BROKER_URL (Redis); nothing else changes.
"""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from cryptography.fernet import Fernet
from csp import constants as csp_constants
from django.core.exceptions import ImproperlyConfigured

from lib.derive import derive_secret

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(environ.Env().str("HUB_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)


def _local_secret(name: str, make: callable) -> str:
    """A secret generated once per checkout and kept in var/ (mode 0600); refused outside DEBUG."""
    path = VAR_DIR / f".{name.lower()}"
    if not DEBUG and not env.bool("HUB_ALLOW_LOCAL_SECRETS", default=False):
        raise ImproperlyConfigured(f"{name} must be set in the environment when DEBUG is off.")
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env.str("SECRET_KEY", default="") or _local_secret(
    "SECRET_KEY", lambda: secrets.token_urlsafe(50)
)
# Newest key first: new values are encrypted with it, older keys still decrypt (rotation).
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[]) or [
    _local_secret("FIELD_ENCRYPTION_KEYS", lambda: Fernet.generate_key().decode())
]
# Keys external patient ids into stable pseudonyms (HMAC); separate from SECRET_KEY so that rotating
# that key does not change every patient reference.
PATIENT_REF_KEY = env.str("PATIENT_REF_KEY", default="") or _local_secret(
    "PATIENT_REF_KEY", lambda: secrets.token_urlsafe(32)
)
# The demo's platform credentials (emulator clients, refresh tokens, webhook keys, feed secrets) are derived
# from this per-install secret (integrations.emulators.demo_secret), so `seed_demo` and the emulator
# process agree and none of them is a constant in the source. Only the demo needs it.
DEMO_SECRET = env.str("DEMO_SECRET", default="") or (
    _local_secret("DEMO_SECRET", lambda: secrets.token_urlsafe(32)) if DEBUG else ""
)
# Keys the audit chain (HMAC-SHA256): "keyid:base64secret", comma-separated, newest first. New entries use
# the first; keep retired keys listed so the entries they signed still verify (docs/audit.md).
AUDIT_HMAC_KEYS = env.list("AUDIT_HMAC_KEYS", default=[]) or [
    _local_secret("AUDIT_HMAC_KEYS", lambda: f"local1:{base64.b64encode(secrets.token_bytes(32)).decode()}")
]
# Where the periodic anchor of the chain head is appended (JSON lines), besides the hub.audit.anchor logger.
AUDIT_ANCHOR_FILE = env.str("AUDIT_ANCHOR_FILE", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "csp",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "guardian",
    "axes",
    "accounts",
    "audit",
    "scheduler",
    "integrations",
    "conflicts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "audit.middleware.RequestContextMiddleware",
    "accounts.middleware.SessionLifetimeMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes requires: it turns a lockout into a 429 response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'hub.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # IMMEDIATE takes the write lock when a transaction starts, so concurrent writers (web, worker,
        # beat) queue up instead of failing with "database is locked" on lock upgrade.
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/login/"  # the hub's sign-in for every role (the admin keeps its own for staff)

# Failed-login lockout (django-axes): per username *and* address, so one attacker cannot lock a colleague
# out from elsewhere.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"  # JSON error shape on /api/, a page elsewhere

# django-guardian: no anonymous user object; anonymous visitors have no permissions at all.
ANONYMOUS_USER_NAME = None

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on every request without it
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes unauthenticated requests 401, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["lib.parsers.JSONObjectParser"],  # nesting bounded, top level an object
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "lib.api.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="30/min"),
        "user": env.str("API_THROTTLE_USER", default="1200/min"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# API tokens are stored hashed (knox) and expire; `manage.py issue_api_token` and POST /api/v1/auth/token/.
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=env.int("API_TOKEN_TTL_DAYS", default=90)),
    "AUTH_HEADER_PREFIX": "Token",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Clinic scheduling hub API",
    "DESCRIPTION": (
        "Every appointment of the practice, wherever it was booked. Errors always have the shape "
        '{"error": {"code", "message", "details"}}. Times are ISO 8601 with a UTC offset.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Appointment.source_system, BusyBlock.source_system and Connection.platform share one choice set.
    "ENUM_NAME_OVERRIDES": {"SourceSystemEnum": "scheduler.models.SourceSystem"},
}
# API request bodies are small JSON documents; larger ones are refused (413) before parsing.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=1024 * 1024)
# Throttling counters live in the cache: set CACHE_URL (e.g. redis://host:6379/1) when running several
# web processes, so the limits hold across them.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

# Celery. The embedded default is kombu's filesystem transport: a real broker that needs no server, so
# tasks run in the separate worker process exactly as they do with Redis.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # Longer than the longest task (a full conflict scan, a windowed re-read), or Redis redelivers a task
    # that is still running to a second worker.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 60 * 60}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "audit-verify-nightly": {"task": "audit.tasks.audit_verify_task", "schedule": crontab(hour=2, minute=30)},
    "audit-anchor": {"task": "audit.tasks.audit_anchor_task", "schedule": crontab(minute="*/10")},
    "conflicts-scan-nightly": {
        "task": "conflicts.tasks.conflicts_scan_task",
        "schedule": crontab(hour=3, minute=0),
    },
    "write-queue-drain": {"task": "integrations.tasks.write_queue_drain_task", "schedule": 60.0},
    "idempotency-keys-purge": {
        "task": "accounts.tasks.idempotency_keys_purge_task",
        "schedule": crontab(minute=17),
    },
    "ics_import_reap_stale": {"task": "ics_import_reap_stale", "schedule": 300.0},
    "google-channels-renew": {
        "task": "integrations.tasks.google_channels_renew_task",
        "schedule": crontab(minute="*/30"),
    },
}
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# The moving sync window: a connection's window is re-read in full (diffed against the ledger) once its last
# full read is this old, so events that were beyond the horizon come in (per connection: config
# "full_read_hours").
SYNC_FULL_READ_HOURS = env.float("SYNC_FULL_READ_HOURS", default=24.0)
# Idempotency-Key records (their replay data is encrypted) are honoured and kept this long, as Stripe's are.
IDEMPOTENCY_KEY_TTL_HOURS = env.float("IDEMPOTENCY_KEY_TTL_HOURS", default=24.0)

# The demo's platform emulators (`manage.py run_emulators`) and where they announce webhooks.
EMULATOR_PORTS = {
    "zocdoc": env.int("EMULATOR_ZOCDOC_PORT", default=8701),
    "kareo": env.int("EMULATOR_KAREO_PORT", default=8702),
    "google": env.int("EMULATOR_GOOGLE_PORT", default=8703),
    "simplepractice": env.int("EMULATOR_SIMPLEPRACTICE_PORT", default=8704),
}
DEMO_HUB_URL = env.str("DEMO_HUB_URL", default="http://127.0.0.1:8000")
# Where people and external calendars reach the hub (deep links in events, push notification addresses).
HUB_BASE_URL = env.str("HUB_BASE_URL", default=DEMO_HUB_URL)

# Google Calendar (integrations/google): the real endpoints by default. GOOGLE_EMULATOR=1 (`make demo`) points
# them all at the emulator `run_emulators` serves, with its demo OAuth client; each can still be set alone.
_GOOGLE_EMU = (
    f"http://127.0.0.1:{EMULATOR_PORTS['google']}" if env.bool("GOOGLE_EMULATOR", default=False) else ""
)
GOOGLE_CALENDAR_API_ENDPOINT = env.str(
    "GOOGLE_CALENDAR_API_ENDPOINT",
    default=f"{_GOOGLE_EMU}/calendar/v3/" if _GOOGLE_EMU else "https://www.googleapis.com/calendar/v3/",
)
GOOGLE_OAUTH_AUTH_URI = env.str(
    "GOOGLE_OAUTH_AUTH_URI",
    default=f"{_GOOGLE_EMU}/o/oauth2/v2/auth"
    if _GOOGLE_EMU
    else "https://accounts.google.com/o/oauth2/v2/auth",
)
GOOGLE_OAUTH_TOKEN_URI = env.str(
    "GOOGLE_OAUTH_TOKEN_URI",
    default=f"{_GOOGLE_EMU}/token" if _GOOGLE_EMU else "https://oauth2.googleapis.com/token",
)
GOOGLE_OAUTH_REVOKE_URI = env.str(
    "GOOGLE_OAUTH_REVOKE_URI",
    default=f"{_GOOGLE_EMU}/revoke" if _GOOGLE_EMU else "https://oauth2.googleapis.com/revoke",
)
GOOGLE_OAUTH_CLIENT_ID = env.str(
    "GOOGLE_OAUTH_CLIENT_ID", default="demo-hub.apps.googleusercontent.com" if _GOOGLE_EMU else ""
)
GOOGLE_OAUTH_CLIENT_SECRET = env.str(
    "GOOGLE_OAUTH_CLIENT_SECRET",
    default=derive_secret(DEMO_SECRET, "google-client-secret") if _GOOGLE_EMU and DEMO_SECRET else "",
)

# iCalendar export, subscription feeds and import (docs/ical.md).
ICS_ALARM_MINUTES = env.list("ICS_ALARM_MINUTES", cast=int, default=[60, 1440])  # VALARM lead times
ICS_FEED_PAST_DAYS = env.int("ICS_FEED_PAST_DAYS", default=30)
ICS_FEED_FUTURE_DAYS = env.int("ICS_FEED_FUTURE_DAYS", default=365)
ICS_FEED_REFRESH_MINUTES = env.int("ICS_FEED_REFRESH_MINUTES", default=15)
ICS_FEED_CACHE_SECONDS = env.int("ICS_FEED_CACHE_SECONDS", default=24 * 60 * 60)
ICS_IMPORT_MAX_BYTES = env.int("ICS_IMPORT_MAX_BYTES", default=20 * 1024 * 1024)
# Uploads larger than this run as a background job (202 + job URL) instead of inside the request.
ICS_IMPORT_BACKGROUND_BYTES = env.int("ICS_IMPORT_BACKGROUND_BYTES", default=256 * 1024)
ICS_IMPORT_WINDOW_PAST_DAYS = env.int("ICS_IMPORT_WINDOW_PAST_DAYS", default=30)
ICS_IMPORT_WINDOW_FUTURE_DAYS = env.int("ICS_IMPORT_WINDOW_FUTURE_DAYS", default=365)
# Recurrence expansion limits (docs/ical.md): a file over one is refused naming the event's UID and line.
ICS_IMPORT_MAX_OCCURRENCES = env.int("ICS_IMPORT_MAX_OCCURRENCES", default=50_000)  # per file, in the window
ICS_IMPORT_MAX_OCCURRENCES_PER_EVENT = env.int("ICS_IMPORT_MAX_OCCURRENCES_PER_EVENT", default=1000)
ICS_IMPORT_MIN_INTERVAL_MINUTES = env.int("ICS_IMPORT_MIN_INTERVAL_MINUTES", default=5)  # occupying events
ICS_IMPORT_EXPANSION_SECONDS = env.float("ICS_IMPORT_EXPANSION_SECONDS", default=10.0)  # time budget
ICS_IMPORT_STALE_MINUTES = env.int("ICS_IMPORT_STALE_MINUTES", default=30)  # no progress: the job is failed
ICS_IMPORT_RETRY_HOURS = env.int("ICS_IMPORT_RETRY_HOURS", default=24)  # a failed job's file kept to retry

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# Production hardening; `manage.py check --deploy` is clean with DEBUG off and HTTPS in front.
if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Preloading HSTS is a commitment for the whole domain that only its owner can make (set
    # SECURE_HSTS_PRELOAD=true once submitted); the check's reminder is silenced, not the protection.
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
SESSION_COOKIE_HTTPONLY = True
# Sessions end SESSION_IDLE_MINUTES after their last request and SESSION_COOKIE_AGE after sign-in, however
# active (accounts.middleware.SessionLifetimeMiddleware); a shared front-desk screen must not stay signed in.
SESSION_IDLE_MINUTES = env.int("SESSION_IDLE_MINUTES", default=30)
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
if not 0 < SESSION_COOKIE_AGE <= 12 * 3600:
    raise ImproperlyConfigured(
        f"SESSION_COOKIE_AGE is {SESSION_COOKIE_AGE} seconds; a session may last at most 12 hours (43200)."
    )
if SESSION_IDLE_MINUTES <= 0:
    raise ImproperlyConfigured("SESSION_IDLE_MINUTES must be a positive number of minutes.")
# Content-Security-Policy (django-csp): scripts and styles from the hub only. FullCalendar injects its own
# stylesheet at run time; it takes the per-request nonce from <meta name="csp-nonce"> (base.html). Style
# attributes stay allowed (the admin sets a few; they cannot run code).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp_constants.SELF],
        "script-src": [csp_constants.SELF],
        "style-src": [csp_constants.SELF, csp_constants.NONCE],
        "style-src-attr": [csp_constants.UNSAFE_INLINE],
        "img-src": [csp_constants.SELF, "data:"],
        "font-src": [csp_constants.SELF, "data:"],
        "connect-src": [csp_constants.SELF],
        "object-src": [csp_constants.NONE],
        "base-uri": [csp_constants.SELF],
        "form-action": [csp_constants.SELF],
        "frame-ancestors": [csp_constants.NONE],
    }
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
