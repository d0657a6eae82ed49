"""Settings for the NHI Governance Portal, read from the environment (see docs/CONFIGURATION.md)."""

import hashlib
import hmac
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portal.env import EnvReader

env = EnvReader()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env.text("PORTAL_VAR_DIR", str(BASE_DIR / "var")))

PORTAL_ENV = env.choice("PORTAL_ENV", "development", ("development", "test", "production"))
PRODUCTION = PORTAL_ENV == "production"

# --- Secrets -----------------------------------------------------------------------------------------------
# Development keys are fixed so that `make run` works on a fresh machine; production refuses to start
# without real ones, because a default key there would let anyone forge sessions or fingerprints.
_DEV_SECRET_KEY = "dev-only-insecure-secret-key-never-use-in-production-0123456789abcdef"
_DEV_FINGERPRINT_KEY = "dev-only-insecure-fingerprint-key-never-use-in-production"

_secret_key = env.secret("SECRET_KEY")
if PRODUCTION:
    if not _secret_key:
        raise ImproperlyConfigured("PORTAL_ENV=production needs SECRET_KEY or SECRET_KEY_FILE.")
    if len(_secret_key) < 50 or len(set(_secret_key)) < 5 or _secret_key.startswith("django-insecure"):
        raise ImproperlyConfigured(
            "SECRET_KEY is too weak for production: use at least 50 random characters "
            '(python -c "import secrets; print(secrets.token_urlsafe(64))").'
        )
    if _secret_key == _DEV_SECRET_KEY:
        raise ImproperlyConfigured("SECRET_KEY is the development key; production needs its own.")
SECRET_KEY = _secret_key or _DEV_SECRET_KEY

_fingerprint_key = env.secret("FINGERPRINT_KEY")
if PRODUCTION:
    if not _fingerprint_key:
        raise ImproperlyConfigured("PORTAL_ENV=production needs FINGERPRINT_KEY or FINGERPRINT_KEY_FILE.")
    if len(_fingerprint_key) < 32:
        raise ImproperlyConfigured("FINGERPRINT_KEY must be at least 32 characters long.")
    if _fingerprint_key == SECRET_KEY:
        raise ImproperlyConfigured("FINGERPRINT_KEY must differ from SECRET_KEY.")
FINGERPRINT_KEY = _fingerprint_key or _DEV_FINGERPRINT_KEY

# The key id is stored with every fingerprint so that keys can rotate: fingerprints made under another
# key are recognisably not comparable.
FINGERPRINT_KEY_ID = env.text(
    "FINGERPRINT_KEY_ID", "fp-" + hashlib.sha256(FINGERPRINT_KEY.encode()).hexdigest()[:12]
)

# Downstream hand-offs (handoffs/): each webhook endpoint's signing key is HMAC(HANDOFF_SIGNING_KEY, endpoint
# id and rotation counter), so no endpoint key is stored. In development it is derived from SECRET_KEY.
_handoff_signing_key = env.secret("HANDOFF_SIGNING_KEY")
if PRODUCTION:
    if not _handoff_signing_key:
        raise ImproperlyConfigured(
            "PORTAL_ENV=production needs HANDOFF_SIGNING_KEY or HANDOFF_SIGNING_KEY_FILE."
        )
    if len(_handoff_signing_key) < 32:
        raise ImproperlyConfigured("HANDOFF_SIGNING_KEY must be at least 32 characters long.")
    if _handoff_signing_key in (SECRET_KEY, FINGERPRINT_KEY):
        raise ImproperlyConfigured("HANDOFF_SIGNING_KEY must differ from SECRET_KEY and FINGERPRINT_KEY.")
HANDOFF_SIGNING_KEY = (
    _handoff_signing_key
    or hmac.new(SECRET_KEY.encode(), b"nhi-portal handoff signing key", hashlib.sha256).hexdigest()
)

# The audit chain (audit/): every entry carries HMAC-SHA256 under AUDIT_CHAIN_KEY, identified by
# AUDIT_CHAIN_KEY_ID so the key can rotate; retired keys stay readable for verification through
# AUDIT_CHAIN_RETIRED_KEYS ("id=key,id=key"). Evidence bundles are signed with an Ed25519 key derived from it.
_audit_chain_key = env.secret("AUDIT_CHAIN_KEY")
if PRODUCTION:
    if not _audit_chain_key:
        raise ImproperlyConfigured("PORTAL_ENV=production needs AUDIT_CHAIN_KEY or AUDIT_CHAIN_KEY_FILE.")
    if len(_audit_chain_key) < 32:
        raise ImproperlyConfigured("AUDIT_CHAIN_KEY must be at least 32 characters long.")
    if _audit_chain_key in (SECRET_KEY, FINGERPRINT_KEY, HANDOFF_SIGNING_KEY):
        raise ImproperlyConfigured(
            "AUDIT_CHAIN_KEY must differ from SECRET_KEY, FINGERPRINT_KEY and HANDOFF_SIGNING_KEY."
        )
AUDIT_CHAIN_KEY = (
    _audit_chain_key
    or hmac.new(SECRET_KEY.encode(), b"nhi-portal audit chain key", hashlib.sha256).hexdigest()
)
AUDIT_CHAIN_KEY_ID = env.text(
    "AUDIT_CHAIN_KEY_ID", "audit-" + hashlib.sha256(AUDIT_CHAIN_KEY.encode()).hexdigest()[:12]
)
AUDIT_CHAIN_RETIRED_KEYS = env.pairs("AUDIT_CHAIN_RETIRED_KEYS")
if AUDIT_CHAIN_KEY_ID in AUDIT_CHAIN_RETIRED_KEYS:
    raise ImproperlyConfigured(
        f"AUDIT_CHAIN_RETIRED_KEYS names the current key id {AUDIT_CHAIN_KEY_ID!r}; retire a key after "
        "it stops being current."
    )

if PRODUCTION and env.flag("DEBUG", False):
    raise ImproperlyConfigured("DEBUG must be off when PORTAL_ENV=production.")
DEBUG = False if PRODUCTION else env.flag("DEBUG", PORTAL_ENV == "development")

if PRODUCTION and not env.is_set("ALLOWED_HOSTS"):
    raise ImproperlyConfigured("PORTAL_ENV=production needs ALLOWED_HOSTS (comma-separated host names).")
ALLOWED_HOSTS = env.items("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.items("CSRF_TRUSTED_ORIGINS", [])

# --- Applications ------------------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_fsm",
    "simple_history",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "portal",
    "nhi_inventory",
    "frameworks",
    "cases",
    "findings",
    "intake",
    "handoffs",
    "audit",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "portal" / "templates"],
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

# --- Database ----------------------------------------------------------------------------------------------
_database_url = env.text("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")
try:
    _database = dj_database_url.parse(
        _database_url, conn_max_age=env.integer("DATABASE_CONN_MAX_AGE", 0, minimum=0)
    )
except ValueError as error:
    raise ImproperlyConfigured(f"DATABASE_URL is malformed: {error}") from None
if not _database.get("ENGINE"):
    raise ImproperlyConfigured(
        "DATABASE_URL names no supported database engine (use sqlite:// or postgres://)."
    )
if _database["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the dev server read while a command writes; the timeout rides out short write locks.
    _database.setdefault("OPTIONS", {})
    # A 16 MB page cache (SQLite's default is 2 MB): an import's inserts land all over the unique indexes.
    _database["OPTIONS"].update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL; PRAGMA cache_size=-16384;"}
    )
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth --------------------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Owners sign in on the plain page at /accounts/login/ (the admin keeps its own) and land on their list.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "findings:owner_list"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.text("MEDIA_ROOT", str(VAR_DIR / "media")))

# --- History -----------------------------------------------------------------------------------------------
# A revert from history would write an old state straight to the row and bypass the state machine.
SIMPLE_HISTORY_REVERT_DISABLED = True
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True

# --- API ---------------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "portal.api.pagination.PortalCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["portal.api.throttling.TokenClientThrottle"],
    # Requests per token; people signed in through the browser are not throttled.
    "DEFAULT_THROTTLE_RATES": {"token": env.text("API_TOKEN_THROTTLE_RATE", "1200/min")},
    "EXCEPTION_HANDLER": "portal.api.errors.portal_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "NHI Governance Portal API",
    "DESCRIPTION": "Cases, identities, findings, evidence and framework reports of the portal.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the installed package (static files), not a CDN: the docs work offline and under a
    # strict Content-Security-Policy.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a "kind", "status" or "format": name each choice set after its model.
    "ENUM_NAME_OVERRIDES": {
        "NhiKindEnum": "nhi_inventory.models.NHIKind",
        "CredentialStatusEnum": "nhi_inventory.models.CredentialStatus",
        "ControlKindEnum": "frameworks.models.ControlKind",
        "ReportSnapshotFormatEnum": "cases.models.ReportFormat",
        "CaseKindEnum": "cases.models.CaseKind",
        "CaseStateEnum": "cases.models.CaseState",
        "EvidenceKindEnum": "cases.models.EvidenceKind",
        "ActionKindEnum": "cases.models.ActionKind",
        "ActionStatusEnum": "cases.models.ActionStatus",
        "ApprovalKindEnum": "cases.models.ApprovalKind",
        "ApprovalStatusEnum": "cases.models.ApprovalStatus",
        "ExposureStateEnum": "findings.models.ExposureState",
        "ScannerReportFormatEnum": "findings.models.ReportFormat",
        "IngestJobStatusEnum": "findings.models.IngestJobStatus",
        "DeliveryStatusEnum": "handoffs.models.DeliveryStatus",
        "HandoffOutcomeEnum": "handoffs.models.REPORTED_OUTCOMES",
    },
}

# --- Background work ---------------------------------------------------------------------------------------
if PRODUCTION and not env.is_set("CELERY_BROKER_URL"):
    raise ImproperlyConfigured("PORTAL_ENV=production needs CELERY_BROKER_URL (e.g. redis://host:6379/0).")
CELERY_BROKER_URL = env.text("CELERY_BROKER_URL", "memory://")
if "://" not in CELERY_BROKER_URL:
    raise ImproperlyConfigured(
        f"CELERY_BROKER_URL={CELERY_BROKER_URL!r} is not a URL (e.g. redis://host:6379/0)."
    )
# Without a real broker (development, tests) no worker would ever run a task: run them in-process.
CELERY_TASK_ALWAYS_EAGER = env.flag("CELERY_TASK_ALWAYS_EAGER", CELERY_BROKER_URL.startswith("memory://"))
# Acknowledge after the task, so a worker that dies mid-task has its message delivered again: only right for a
# task that is safe to run twice, so each such task opts in (`@shared_task(acks_late=True)`); others are
# acknowledged on receipt. With acks_late, a task whose worker process is killed is requeued, not failed.
CELERY_TASK_ACKS_LATE = False
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Redis: a message not acknowledged within this many seconds is delivered again, to whichever worker asks.
# It must exceed the longest task (a large import; its redelivery finds the job running and does nothing)
# and the longest retry countdown (hand-offs back off at most 30 minutes). The SLA check is a periodic
# sweep, not a task scheduled with a countdown at the due date, which this timeout would deliver twice.
_visibility_timeout = env.integer("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1)
if CELERY_BROKER_URL.startswith("filesystem://"):
    # `make run` without Redis: the worker and its embedded beat exchange messages as files under var/.
    _celery_dir = VAR_DIR / "celery"
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "data_folder_in": str(_celery_dir / "queue"),
        "data_folder_out": str(_celery_dir / "queue"),
        "control_folder": str(_celery_dir / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": _visibility_timeout}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
# Tasks outside an app's tasks.py: findings.jobs runs findings_import, which findings.tasks cannot import.
CELERY_IMPORTS = ("findings.jobs",)

# Shared by the web processes and the workers: a background ingest job reports its progress through it.
# Without CACHE_URL each process has its own memory cache: enough when tasks run in-process (development,
# tests); with separate workers, set it (Redis) or a running job shows no progress until it ends.
_cache_url = env.text("CACHE_URL", "")
if _cache_url and not _cache_url.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"CACHE_URL={_cache_url!r} is not a Redis URL (e.g. redis://host:6379/1).")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
    if _cache_url
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# --- Email -------------------------------------------------------------------------------------------------
EMAIL_BACKEND = env.text(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env.text("EMAIL_HOST", "localhost")
EMAIL_PORT = env.integer("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env.text("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env.secret("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = env.flag("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env.flag("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be on.")
DEFAULT_FROM_EMAIL = env.text("DEFAULT_FROM_EMAIL", "nhi-portal@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Who is told by email when a verification finds the audit chain broken (comma-separated addresses).
ADMINS = [(address, address) for address in env.items("ADMINS", [])]
# Links in emails are absolute: the address people reach the portal at, without a trailing slash.
PORTAL_BASE_URL = env.text("PORTAL_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
if not PORTAL_BASE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(
        f"PORTAL_BASE_URL={PORTAL_BASE_URL!r} is not an http(s) URL (e.g. https://nhi.example.com)."
    )
# How long an emailed answer link stays valid, in seconds (it is also single-use).
FINDINGS_ANSWER_LINK_MAX_AGE = env.integer("FINDINGS_ANSWER_LINK_MAX_AGE", 7 * 24 * 3600, minimum=60)
# Owners who leave an exposure unanswered are reminded after this many days, and again every as many days,
# up to FINDINGS_REMINDERS_BEFORE_ESCALATION reminders; as many days after the last one, their team lead is
# told, once (findings/reminders.py; 0 reminders: the lead is told after the first interval).
FINDINGS_REMINDER_EVERY_DAYS = env.integer("FINDINGS_REMINDER_EVERY_DAYS", 3, minimum=1)
FINDINGS_REMINDERS_BEFORE_ESCALATION = env.integer("FINDINGS_REMINDERS_BEFORE_ESCALATION", 2, minimum=0)
# Reports up to this size (bytes) are imported during the upload (`POST /api/v1/ingest/`, 201); larger ones
# by a background job (202).
FINDINGS_INGEST_SYNC_MAX_BYTES = env.integer("FINDINGS_INGEST_SYNC_MAX_BYTES", 4 * 1024 * 1024, minimum=0)
# Key for the reports that wait for a background import, encrypted (findings/pending_files.py). Without it,
# the key is derived from SECRET_KEY (HKDF): rotating SECRET_KEY then fails the jobs still waiting.
FINDINGS_INGEST_KEY = env.secret("FINDINGS_INGEST_KEY") or ""
if FINDINGS_INGEST_KEY and len(FINDINGS_INGEST_KEY) < 32:
    raise ImproperlyConfigured("FINDINGS_INGEST_KEY must be at least 32 characters long.")
# Hand-offs: a delivery is tried at most HANDOFF_MAX_ATTEMPTS times, waiting HANDOFF_RETRY_BASE_SECONDS * 2**n
# between tries (capped below Redis' one-hour visibility timeout), each POST at most HANDOFF_TIMEOUT_SECONDS.
HANDOFF_MAX_ATTEMPTS = env.integer("HANDOFF_MAX_ATTEMPTS", 6, minimum=1)
HANDOFF_RETRY_BASE_SECONDS = env.integer("HANDOFF_RETRY_BASE_SECONDS", 30, minimum=1)
HANDOFF_TIMEOUT_SECONDS = env.integer("HANDOFF_TIMEOUT_SECONDS", 10, minimum=1)

# --- Production hardening ----------------------------------------------------------------------------------
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.flag("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env.integer("SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"
    if env.flag("SECURE_PROXY_SSL_HEADER", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.text("LOG_LEVEL", "INFO")},
}
