"""cfm settings: everything from the environment, read by strict helpers.

A bad value raises ImproperlyConfigured at start, never a silent fallback.
The `CFM_` settings are listed in the README.
"""
from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from kombu import Queue

from cfm import catalog

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CFM_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false)")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.replace("_", ""))
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from exc
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum {minimum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


_known_cfm = {
    "CFM_VAR_DIR", "CFM_MAX_HEADER_BYTES", "CFM_MAX_CONFIG_BYTES", "CFM_MAX_SMALL_FILE_BYTES", "CFM_MAX_JSON_DEPTH",
    "CFM_MAX_TENSORS", "CFM_ARCHIVE_MAX_BYTES", "CFM_ARCHIVE_MAX_FILES", "CFM_ARCHIVE_MAX_RATIO",
    "CFM_UPLOAD_MAX_BYTES", "CFM_HUB_TIMEOUT", "CFM_HUB_MAX_RETRIES",
    "CFM_JOB_SOFT_TIME_LIMIT", "CFM_JOB_TIME_LIMIT", "CFM_JOB_LEASE_SECONDS", "CFM_SWEEP_INTERVAL",
    "CFM_JOB_MAX_ATTEMPTS", "CFM_JOB_RETRY_BACKOFF",
    "CFM_TOKEN_KEY", "CFM_MEDIA_DIR", "CFM_S3_ENDPOINT", "CFM_S3_BUCKET", "CFM_S3_ACCESS_KEY",
    "CFM_S3_SECRET_KEY", "CFM_S3_REGION", "CFM_PREPARE_MAX_MEMORY", "CFM_PREPARE_TIME_LIMIT",
    "CFM_DEFAULT_LIMIT_UNITS", "CFM_EAGER_CELERY", "CFM_TEST_REQUIRE_SERVICES",
    "CFM_LOGIN_FAILURE_LIMIT", "CFM_LOGIN_LOCKOUT_SECONDS", "CFM_ANON_BODY_MAX_BYTES", "CFM_BODY_MAX_BYTES",
    "CFM_SSL_REDIRECT", "CFM_HSTS_SECONDS", "CFM_SECURE_COOKIES", "CFM_PROXY_SSL_HEADER", "CFM_HEARTBEAT_INTERVAL",
    "CFM_PLATFORM_URLS", "CFM_STORAGE_URLS", "CFM_PLATFORM_DEPLOY_TIMEOUT", "CFM_PLATFORM_SYNC_INTERVAL",
}
_misspelt = sorted(k for k in os.environ if k.startswith("CFM_") and k not in _known_cfm)
if _misspelt:
    raise ImproperlyConfigured(f"unknown setting(s) {', '.join(_misspelt)}: see the README for the CFM_ settings")

DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    # Development only: a key generated once per checkout, never committed.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "ninja",
    "cfm.web",
    "cfm.jobs",
    "cfm.accounts",
    "cfm.registry",
    "cfm.quota",
    "cfm.feedback",
    "cfm.preparation",
    "cfm.platform",
    "cfm.workers",
    "axes",
]

MIDDLEWARE = [
    # First: every answer under /api/v1/, also Django's own 400s, leaves as the JSON error envelope.
    "cfm.web.guards.ApiErrorEnvelopeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "cfm.web.guards.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "cfm.web.middleware.ReaderTimezoneMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Its __call__ runs before any process_view, so before CsrfViewMiddleware reads request.POST.
    "cfm.web.guards.BodyCapMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last: turns a locked-out login into the page that says so (cfm.accounts.throttle).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "cfm.urls"
WSGI_APPLICATION = "cfm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "cfm.web.context.globals_",
            ],
        },
    },
]

# --- Database: DATABASE_URL, default SQLite in WAL mode -------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
DATABASES: dict[str, Any]  # dj_database_url gives a TypedDict, SQLite a plain dict
#: The web server and the worker write concurrently: WAL lets readers go on
#: during a write, IMMEDIATE takes the write lock at BEGIN so two writers
#: queue instead of deadlocking. Also for a SQLite named by DATABASE_URL
#: (without them concurrent deployments failed with "database is locked").
_SQLITE_OPTIONS = {
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}
if DATABASE_URL:
    try:
        DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from exc
    if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        DATABASES["default"]["OPTIONS"] = {**_SQLITE_OPTIONS, **(DATABASES["default"].get("OPTIONS") or {})}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "cfm.sqlite3",
            "OPTIONS": dict(_SQLITE_OPTIONS),
        }
    }
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"].setdefault("TEST", {})["NAME"] = str(VAR_DIR / "test-cfm.sqlite3")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# --- Login throttling (django-axes; cfm/accounts/throttle.py) ----------------
# The throttle comes first: a locked account or address is refused before its password is hashed.
AUTHENTICATION_BACKENDS = ["cfm.accounts.throttle.LoginThrottleBackend", "django.contrib.auth.backends.ModelBackend"]
CFM_LOGIN_FAILURE_LIMIT = env_int("CFM_LOGIN_FAILURE_LIMIT", 5, minimum=1)
CFM_LOGIN_LOCKOUT_SECONDS = env_int("CFM_LOGIN_LOCKOUT_SECONDS", 900, minimum=1)
AXES_FAILURE_LIMIT = CFM_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=CFM_LOGIN_LOCKOUT_SECONDS)
# Either one locks: an account attacked from many addresses, an address trying many accounts.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_LOCKOUT_CALLABLE = "cfm.accounts.throttle.login_locked_out"
# A success does not wipe the failures: else logging into one's own account from the same address
# between guesses would reset the address's count. They expire after the lockout time.
AXES_RESET_ON_SUCCESS = False
AXES_VERBOSE = False

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "home"

# --- i18n ----------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("ja", _("Japanese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media ----------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing folder
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
                    if not DEBUG else "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MEDIA_ROOT = Path(os.environ.get("CFM_MEDIA_DIR", VAR_DIR / "media"))
MEDIA_URL = "media/"
WHITENOISE_USE_FINDERS = True

# --- Celery --------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
CFM_EAGER_CELERY = env_bool("CFM_EAGER_CELERY", False)
if REDIS_URL:
    if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"REDIS_URL={REDIS_URL!r} is not a redis:// URL")
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any]
    # Fail fast when Redis is down: a registration must answer within ~2 s
    # (the outbox row keeps the job; the sweeper queues it later).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_connect_timeout": 1, "socket_timeout": 2, "max_retries": 0,
        "visibility_timeout": 3600,
    }
    CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
else:
    BROKER_DIR = VAR_DIR / "broker"
    (BROKER_DIR / "queue").mkdir(parents=True, exist_ok=True)
    (BROKER_DIR / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = CFM_EAGER_CELERY
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CFM_JOB_SOFT_TIME_LIMIT", 600, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CFM_JOB_TIME_LIMIT", 660, minimum=1)
if CELERY_TASK_TIME_LIMIT <= CELERY_TASK_SOFT_TIME_LIMIT:
    raise ImproperlyConfigured("CFM_JOB_TIME_LIMIT must be above CFM_JOB_SOFT_TIME_LIMIT")
CFM_JOB_LEASE_SECONDS = env_int("CFM_JOB_LEASE_SECONDS", 120, minimum=5)
CFM_SWEEP_INTERVAL = env_int("CFM_SWEEP_INTERVAL", 30, minimum=1)
# Each worker writes a heartbeat this often (s); /healthz counts it live for a minute (or three beats).
CFM_HEARTBEAT_INTERVAL = env_int("CFM_HEARTBEAT_INTERVAL", 15, minimum=1)
# Attempts of one job of any kind (transient Hub faults, lost workers) before it fails.
CFM_JOB_MAX_ATTEMPTS = env_int("CFM_JOB_MAX_ATTEMPTS", 3, minimum=1)
# Seconds before the first retry of a transient fault (then doubling, with jitter).
CFM_JOB_RETRY_BACKOFF = env_int("CFM_JOB_RETRY_BACKOFF", 5, minimum=1)
# The sweeper: queues the outbox, re-queues lost messages, reclaims expired leases.
CELERY_BEAT_SCHEDULE = {
    "cfm-sweep": {"task": "cfm.jobs.sweep", "schedule": float(CFM_SWEEP_INTERVAL),
                  "options": {"expires": float(CFM_SWEEP_INTERVAL)}},
}
CELERY_TIMEZONE = "UTC"
# Prepare jobs (downloads, conversions: minutes to hours) have a queue of their
# own, so that a worker started with `-Q celery` answers inspections and runs
# the sweeper however many Prepare jobs run elsewhere. A worker started without
# -Q consumes both queues: one `celery -A cfm worker -B` is still a complete back end.
CELERY_TASK_DEFAULT_QUEUE = "celery"
# Each job's message names its kind's queue (cfm.jobs.runtime.JobKind.queue).
CELERY_TASK_QUEUES = (Queue("celery", routing_key="celery"), Queue("cfm-prepare", routing_key="cfm-prepare"))

# --- The Hub ---------------------------------------------------------------
HF_ENDPOINT = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
# Plain HTTP range requests: no Xet transfer for header reads.
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
CFM_HUB_TIMEOUT = env_int("CFM_HUB_TIMEOUT", 20, minimum=1)
CFM_HUB_MAX_RETRIES = env_int("CFM_HUB_MAX_RETRIES", 4, minimum=0)

# --- Inspection caps (the engine's InspectLimits) --------------------------
CFM_MAX_HEADER_BYTES = env_int("CFM_MAX_HEADER_BYTES", 100_000_000, minimum=1024)
CFM_MAX_CONFIG_BYTES = env_int("CFM_MAX_CONFIG_BYTES", 4_000_000, minimum=1024)
CFM_MAX_SMALL_FILE_BYTES = env_int("CFM_MAX_SMALL_FILE_BYTES", 64_000_000, minimum=1024)
CFM_MAX_JSON_DEPTH = env_int("CFM_MAX_JSON_DEPTH", 200, minimum=4)
CFM_MAX_TENSORS = env_int("CFM_MAX_TENSORS", 300_000, minimum=1)
CFM_ARCHIVE_MAX_BYTES = env_int("CFM_ARCHIVE_MAX_BYTES", 2 * 1024**3, minimum=1024)
CFM_ARCHIVE_MAX_FILES = env_int("CFM_ARCHIVE_MAX_FILES", 10_000, minimum=1)
CFM_ARCHIVE_MAX_RATIO = env_int("CFM_ARCHIVE_MAX_RATIO", 200, minimum=1)
CFM_UPLOAD_MAX_BYTES = env_int("CFM_UPLOAD_MAX_BYTES", 2 * 1024**3, minimum=1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440  # larger uploads stream to a temp file
# Bodies are refused by their Content-Length before a byte is read (cfm.web.guards.BodyCapMiddleware):
# anyone not logged in may send CFM_ANON_BODY_MAX_BYTES (a login form is a few hundred bytes), a logged-in
# user CFM_BODY_MAX_BYTES, and a multipart POST to an upload endpoint CFM_UPLOAD_MAX_BYTES.
CFM_ANON_BODY_MAX_BYTES = env_int("CFM_ANON_BODY_MAX_BYTES", 16_384, minimum=1024)
CFM_BODY_MAX_BYTES = env_int("CFM_BODY_MAX_BYTES", 2_621_440, minimum=CFM_ANON_BODY_MAX_BYTES)
# The non-file fields of one request: the folder upload's manifest (20 MB at most) is the largest.
DATA_UPLOAD_MAX_MEMORY_SIZE = 24_000_000
FILE_UPLOAD_PERMISSIONS = 0o600
# A folder snapshot posts one part per small file and per safetensors header
# (a 405B model: ~200 shards); Django's default of 100 parts would refuse it.
DATA_UPLOAD_MAX_NUMBER_FILES = 5000

# --- Quota ---------------------------------------------------------------
CFM_DEFAULT_LIMIT_UNITS = env_int("CFM_DEFAULT_LIMIT_UNITS", catalog.DEFAULT_LIMIT_UNITS, minimum=0)

# --- Secrets at rest (Hub tokens) -------------------------------------------
CFM_TOKEN_KEY = os.environ.get("CFM_TOKEN_KEY", "")

# --- Preparation storage ----------------------------------------------------
CFM_S3_ENDPOINT = os.environ.get("CFM_S3_ENDPOINT", "")
CFM_S3_BUCKET = os.environ.get("CFM_S3_BUCKET", "")
CFM_S3_ACCESS_KEY = os.environ.get("CFM_S3_ACCESS_KEY", "")
CFM_S3_SECRET_KEY = os.environ.get("CFM_S3_SECRET_KEY", "")
CFM_S3_REGION = os.environ.get("CFM_S3_REGION", "us-east-1")
CFM_PREPARE_MAX_MEMORY = env_int("CFM_PREPARE_MAX_MEMORY", 8 * 1024**3, minimum=64 * 1024**2)
CFM_PREPARE_TIME_LIMIT = env_int("CFM_PREPARE_TIME_LIMIT", 3600, minimum=10)

# --- The platform (watsonx.ai): connections, real deployments, the sync ------
_PLATFORM_REGIONS = ("us-south", "eu-de", "eu-gb", "jp-tok", "au-syd", "ca-tor")


def env_url_prefixes(name: str, default: list[str]) -> list[str]:
    """Allowed URL prefixes: cfm calls no address a user typed unless it
    starts with one of these (so a connection cannot aim cfm's requests at
    an internal host)."""
    prefixes = env_list(name, default)
    for prefix in prefixes:
        if not prefix.startswith(("https://", "http://")) or " " in prefix:
            raise ImproperlyConfigured(f"{name}: {prefix!r} is not an http(s) URL prefix")
    if not prefixes:
        raise ImproperlyConfigured(f"{name} is empty: give at least one URL prefix")
    return prefixes


CFM_PLATFORM_URLS = env_url_prefixes(
    "CFM_PLATFORM_URLS", [f"https://{r}.ml.cloud.ibm.com" for r in _PLATFORM_REGIONS] + ["https://iam.cloud.ibm.com"])
CFM_STORAGE_URLS = env_url_prefixes(
    "CFM_STORAGE_URLS", [f"https://s3.{kind}{r}.cloud-object-storage.appdomain.cloud"
                         for kind in ("", "direct.", "private.") for r in _PLATFORM_REGIONS])
# A deployment not ready after this many seconds is given up as failed.
CFM_PLATFORM_DEPLOY_TIMEOUT = env_int("CFM_PLATFORM_DEPLOY_TIMEOUT", 3600, minimum=1)
# How often each connected space's deployments are compared with the ledger.
CFM_PLATFORM_SYNC_INTERVAL = env_int("CFM_PLATFORM_SYNC_INTERVAL", 300, minimum=1)
CELERY_BEAT_SCHEDULE["cfm-platform-sync"] = {
    "task": "cfm.platform.sync", "schedule": float(CFM_PLATFORM_SYNC_INTERVAL),
    "options": {"expires": float(CFM_PLATFORM_SYNC_INTERVAL)}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    # The Hub client logs each HTTP request at INFO: dozens per inspection.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "httpx2": {"level": "WARNING"},
                "httpx": {"level": "WARNING"}},
}

# --- HTTPS (production: gunicorn behind a TLS proxy; see the README) -----------------------------------------
# On by default whenever DEBUG is off; `make run` (DEBUG=1) and the tests serve plain http.
CFM_SSL_REDIRECT = env_bool("CFM_SSL_REDIRECT", not DEBUG)
CFM_HSTS_SECONDS = env_int("CFM_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
CFM_SECURE_COOKIES = env_bool("CFM_SECURE_COOKIES", not DEBUG)
#: The header the TLS proxy sets to the client's scheme; empty: no proxy, trust no such header.
CFM_PROXY_SSL_HEADER = os.environ.get("CFM_PROXY_SSL_HEADER", "" if DEBUG else "X-Forwarded-Proto").strip()
SECURE_SSL_REDIRECT = CFM_SSL_REDIRECT
# Load balancers probe over plain http.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = CFM_HSTS_SECONDS
SECURE_HSTS_INCLUDE_SUBDOMAINS = CFM_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = CFM_HSTS_SECONDS > 0
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = CFM_SECURE_COOKIES
if CFM_PROXY_SSL_HEADER:
    if not all(c.isalnum() or c == "-" for c in CFM_PROXY_SSL_HEADER):
        raise ImproperlyConfigured(f"CFM_PROXY_SSL_HEADER={CFM_PROXY_SSL_HEADER!r} is not a header name")
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + CFM_PROXY_SSL_HEADER.upper().replace("-", "_"), "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# `make run` has DEBUG on: its error page must not show the Redis or database password in a URL.
DEFAULT_EXCEPTION_REPORTER_FILTER = "cfm.web.errors.SecretMaskingReporterFilter"
DEFAULT_EXCEPTION_REPORTER = "cfm.web.errors.SecretMaskingExceptionReporter"
