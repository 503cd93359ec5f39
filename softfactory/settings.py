"""SoftFactory settings: one file, every difference between environments is an env value.

Variables are listed in .env.example. The local stack (scripts/stack) writes var/stack.env with
the addresses of its own servers; it fills in whatever the environment leaves unset, so
`manage.py` and pytest work in a checkout without sourcing anything. Nothing here talks to a
database or Redis: gunicorn imports settings before it forks.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
for env_file in (BASE_DIR / "var" / "stack.env", BASE_DIR / ".env"):
    if env_file.exists():
        environ.Env.read_env(env_file, overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment (see .env.example); "
            "only DEBUG=True runs fall back to an insecure development key."
        )
    SECRET_KEY = "django-insecure-development-only-key"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_prometheus",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "platform_core",
    "coocook",
    "sns",
    "review",
]

MIDDLEWARE = [
    "softfactory.parsers.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # gzip (BREACH-aware) outside the ETag/Cache-Control middleware, which sees uncompressed bytes;
    # whitenoise above both serves its own pre-compressed static files (docs/CACHING.md).
    "softfactory.http_caching.CompressionMiddleware",
    "softfactory.http_caching.HttpCachingMiddleware",
    "softfactory.cache.PendingBumpsMiddleware",
    "softfactory.positions.RoutingMiddleware",
    # Known hits of cached reads answered here, before URL resolution and DRF (docs/CACHING.md).
    "softfactory.cache.EarlyHitsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # django-prometheus's series that deploy/ reads, and only those (softfactory/http_metrics.py).
    "softfactory.http_metrics.RequestMetricsMiddleware",
]

# --- security (production values in .env.example; `manage.py check --deploy` is clean with them) ---
# Behind a TLS-terminating proxy, trust its X-Forwarded-Proto so request.is_secure() is right.
if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Request bodies: DRF's JSON parser reads the stream itself, so softfactory.api enforces this too (413).
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
API_MAX_JSON_DEPTH = env.int("API_MAX_JSON_DEPTH", default=32)

ROOT_URLCONF = "softfactory.urls"
WSGI_APPLICATION = "softfactory.wsgi.application"
# Paths are exact (API.md): a trailing slash is a different, unknown path, never a redirect.
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# --- databases --------------------------------------------------------------------------
# `default` is the primary; DATABASE_REPLICA_URLS (comma-separated) become replica_1..n.
# softfactory.db_router decides per read; ATOMIC_REQUESTS stays off, or every request would
# run in a transaction on the primary and replicas would never be used.
DATABASE_ENGINE = "softfactory.db_backend"
CONN_MAX_AGE = env.int("CONN_MAX_AGE", default=60)
DB_CONNECT_TIMEOUT = env.int("DB_CONNECT_TIMEOUT", default=2)
DB_STATEMENT_TIMEOUT_MS = env.int("DB_STATEMENT_TIMEOUT_MS", default=30_000)


def _database(url: str, *, role: str) -> dict:
    config = environ.Env.db_url_config(url)
    if not config["ENGINE"].endswith("postgresql"):
        raise ImproperlyConfigured(f"SoftFactory needs PostgreSQL; got {url.split(':', 1)[0]}")
    config.update(
        ENGINE=DATABASE_ENGINE,
        CONN_MAX_AGE=CONN_MAX_AGE,
        CONN_HEALTH_CHECKS=True,
        ATOMIC_REQUESTS=False,
        ROLE=role,
    )
    options = config.setdefault("OPTIONS", {})
    options.setdefault("connect_timeout", DB_CONNECT_TIMEOUT)
    options.setdefault("options", f"-c statement_timeout={DB_STATEMENT_TIMEOUT_MS}")
    if role == "replica":
        # Physical replication copies the test database the primary creates; the replica
        # alias takes its NAME and keeps connecting to its own server (Django 5.2 MIRROR).
        config["TEST"] = {"MIRROR": "default"}
    return config


DATABASES = {"default": _database(env.str("DATABASE_URL"), role="primary")}
# Several suites may share one stack (parallel checkouts, helpers): each names its test database.
if _test_db_name := env.str("TEST_DATABASE_NAME", default=""):
    DATABASES["default"]["TEST"] = {"NAME": _test_db_name}
for _index, _url in enumerate(env.list("DATABASE_REPLICA_URLS", default=[]), start=1):
    DATABASES[f"replica_{_index}"] = _database(_url, role="replica")
REPLICA_ALIASES = [alias for alias in DATABASES if alias != "default"]
DATABASE_ROUTERS = ["softfactory.db_router.PrimaryReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# `manage.py migrate` runs with these on its session (docs/MIGRATIONS.md): a statement that
# queues for a lock behind an open transaction fails after MIGRATION_LOCK_TIMEOUT instead of
# stalling every query queued behind it; concurrent index builds run without either.
MIGRATION_LOCK_TIMEOUT = env.str("MIGRATION_LOCK_TIMEOUT", default="5s")
MIGRATION_STATEMENT_TIMEOUT = env.str("MIGRATION_STATEMENT_TIMEOUT", default="5min")

# --- connection pooling: PgBouncer in front of the primary (docs/DEPLOYMENT.md) -----------
# With DATABASE_POOL_URL set, `default` goes through PgBouncer in *transaction* pooling: a server
# connection is lent for one transaction, so a few dozen serve every web and worker process. What
# lives in a session can't be used through it: server-side cursors (DISABLE_SERVER_SIDE_CURSORS),
# session SET, session advisory locks (transaction-scoped ones and SET LOCAL are fine).
# migrate (its session lock_timeout and advisory lock), the seeders, check_indexes and dbshell —
# and any process run with DATABASE_POOL_DISABLED=True — connect to DATABASE_URL directly.
DATABASE_POOL_URL = env.str("DATABASE_POOL_URL", default="")
# PgBouncer's default_pool_size + reserve_pool_size for the app database (0: no pool); exported
# by /metrics next to each server's max_connections.
DATABASE_POOL_LIMIT = env.int("DATABASE_POOL_LIMIT", default=0)
_DIRECT_COMMANDS = {"migrate", "sqlmigrate", "showmigrations", "check_indexes", "dbshell", "flush", "loaddata"}
_command = sys.argv[1] if len(sys.argv) > 1 and Path(sys.argv[0]).name == "manage.py" else ""
DATABASE_POOLED = (
    bool(DATABASE_POOL_URL)
    and not env.bool("DATABASE_POOL_DISABLED", default=False)
    and not (_command in _DIRECT_COMMANDS or _command.startswith("seed"))
)
if DATABASE_POOLED:
    _pooled = _database(DATABASE_POOL_URL, role="primary")
    # PgBouncer ignores startup options (ignore_startup_parameters); its connect_query sets the
    # statement_timeout on every server connection instead (deploy/pgbouncer/pgbouncer.ini).
    _pooled["OPTIONS"].pop("options", None)
    _pooled["DISABLE_SERVER_SIDE_CURSORS"] = True
    if "TEST" in DATABASES["default"]:
        _pooled["TEST"] = DATABASES["default"]["TEST"]
    DATABASES["default"] = _pooled

# --- Redis: cache, sessions, broker -----------------------------------------------------
REDIS_URL = env.str("REDIS_URL")


def _redis_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


_redis_base_db = int((urlsplit(REDIS_URL).path or "/0").lstrip("/") or 0)
REDIS_CACHE_URL = env.str("REDIS_CACHE_URL", default=_redis_db(REDIS_URL, _redis_base_db))
REDIS_SESSIONS_URL = env.str("REDIS_SESSIONS_URL", default=_redis_db(REDIS_URL, _redis_base_db + 1))
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=_redis_db(REDIS_URL, _redis_base_db + 2))
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=0.25)


def _redis_cache(url: str) -> dict:
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": url,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="sf"),
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            "IGNORE_EXCEPTIONS": True,
            "CONNECTION_POOL_KWARGS": {"max_connections": env.int("REDIS_MAX_CONNECTIONS", default=50)},
        },
    }


CACHES = {"default": _redis_cache(REDIS_CACHE_URL), "sessions": _redis_cache(REDIS_SESSIONS_URL)}
# Response cache (softfactory/cache.py, docs/CACHING.md). The TTL is the hard bound on staleness
# when an invalidation is lost (a Redis outage at the moment of a write).
RESPONSE_CACHE_ENABLED = env.bool("RESPONSE_CACHE_ENABLED", default=True)
RESPONSE_CACHE_TTL_SECONDS = env.int("RESPONSE_CACHE_TTL_SECONDS", default=60)
RESPONSE_CACHE_VERSION = env.str("RESPONSE_CACHE_VERSION", default="1")  # part of every key
RESPONSE_CACHE_LOCK_TTL_SECONDS = env.float("RESPONSE_CACHE_LOCK_TTL_SECONDS", default=5.0)
RESPONSE_CACHE_LOCK_WAIT_SECONDS = env.float("RESPONSE_CACHE_LOCK_WAIT_SECONDS", default=1.0)
RESPONSE_CACHE_REPLICA_WAIT_SECONDS = env.float("RESPONSE_CACHE_REPLICA_WAIT_SECONDS", default=0.05)
RESPONSE_CACHE_BREAKER_FAILURES = env.int("RESPONSE_CACHE_BREAKER_FAILURES", default=3)
RESPONSE_CACHE_BREAKER_COOLDOWN_SECONDS = env.float("RESPONSE_CACHE_BREAKER_COOLDOWN_SECONDS", default=5.0)
# Known hits answered before DRF runs (softfactory.cache.EarlyHitsMiddleware), to callers this accepts.
RESPONSE_CACHE_EARLY_HITS = env.bool("RESPONSE_CACHE_EARLY_HITS", default=True)
RESPONSE_CACHE_EARLY_CALLER_CHECK = "platform_core.authentication.passes_authentication"
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
# cached_db: a Redis restart or outage logs nobody out; the database row is the truth.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_CACHE_ALIAS = "sessions"

# --- Celery (docs/SCHEDULING.md) -------------------------------------------------------
# Invariants: publish call timeout < soft time limit < hard time limit < SNS claim lease, and the
# broker's visibility timeout well above all of them (a longer task would be delivered twice).
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True  # a task whose worker dies before finishing is delivered again
CELERY_TASK_REJECT_ON_WORKER_LOST = True  # ...also when only its pool child was killed
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # few unstarted messages stranded on a dead worker
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=90)  # below the SNS claim lease
_visibility_timeout = env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": _visibility_timeout}
CELERY_TASK_IGNORE_RESULT = True  # state lives in the database rows; no result backend
# Celery's Django fixup would close every database connection before and after each task (a new
# connection per task); RoutedTask applies Django's per-request rules instead (CONN_MAX_AGE,
# CONN_HEALTH_CHECKS), so this only bounds how long the fixup lets a connection live.
CELERY_DB_REUSE_MAX = 10_000
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
CELERY_TASK_DEFAULT_QUEUE = "default"
# One queue per kind of work, so a publishing backlog never delays the dispatcher or emails.
CELERY_TASK_QUEUES = [
    Queue("dispatch", routing_key="dispatch"),
    Queue("publish", routing_key="publish"),
    Queue("notifications", routing_key="notifications"),
    Queue("default", routing_key="default"),
]
CELERY_TASK_ROUTES = {
    "sns.tasks.dispatch_due_posts": {"queue": "dispatch"},
    "sns.tasks.publish_posts": {"queue": "publish"},
    "sns.tasks.publish_post": {"queue": "publish"},
    "platform_core.tasks.deliver_notification": {"queue": "notifications"},
    "platform_core.tasks.deliver_pending_notifications": {"queue": "notifications"},
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_MAX_LOOP_INTERVAL = 5
SNS_DISPATCH_INTERVAL_SECONDS = env.float("SNS_DISPATCH_INTERVAL_SECONDS", default=1.0)
# Synced into django-celery-beat's tables when beat starts: present on every fresh database,
# listed (and pausable) in the admin. Stale ticks expire instead of piling up behind an outage.
CELERY_BEAT_SCHEDULE = {
    "sns-dispatch-due-posts": {
        "task": "sns.tasks.dispatch_due_posts",
        "schedule": SNS_DISPATCH_INTERVAL_SECONDS,
        "options": {"expire_seconds": 10},
    },
    "sns-record-post-stats": {
        "task": "sns.tasks.record_post_stats",
        "schedule": 60.0,
        "options": {"expire_seconds": 60},
    },
    "coocook-complete-finished-bookings": {
        "task": "coocook.tasks.complete_finished_bookings",
        "schedule": 60.0,
        "options": {"expire_seconds": 60},
    },
    "review-close-campaigns-past-deadline": {
        "task": "review.tasks.close_campaigns_past_deadline",
        "schedule": 30.0,
        "options": {"expire_seconds": 30},
    },
    "platform-clear-expired-sessions": {
        "task": "platform_core.tasks.clear_expired_sessions",
        "schedule": 3600.0,
        "options": {"expire_seconds": 600},
    },
    "platform-purge-idempotency-records": {
        "task": "platform_core.tasks.purge_idempotency_records",
        "schedule": 3600.0,
        "options": {"expire_seconds": 600},
    },
    "platform-deliver-pending-notifications": {
        "task": "platform_core.tasks.deliver_pending_notifications",
        "schedule": env.float("NOTIFICATION_SWEEP_INTERVAL_SECONDS", default=30.0),
        "options": {"expire_seconds": 30},
    },
}
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True

# --- SNS publishing (docs/SCHEDULING.md) -----------------------------------------------
# platform -> publisher class; platforms not listed use SNS_DEFAULT_PUBLISHER.
SNS_DEFAULT_PUBLISHER = env.str("SNS_DEFAULT_PUBLISHER", default="sns.publishers.LogPublisher")
SNS_PUBLISHERS: dict[str, str] = env.dict("SNS_PUBLISHERS", default={})
SNS_WEBHOOK_URL = env.str("SNS_WEBHOOK_URL", default="")
SNS_PUBLISH_TIMEOUT_SECONDS = env.float("SNS_PUBLISH_TIMEOUT_SECONDS", default=30.0)  # < soft time limit
SNS_LEASE_SECONDS = env.int("SNS_LEASE_SECONDS", default=300)  # > hard time limit
SNS_DISPATCH_BATCH = env.int("SNS_DISPATCH_BATCH", default=500)
SNS_DISPATCH_MAX_BATCHES = env.int("SNS_DISPATCH_MAX_BATCHES", default=20)
# Posts per publish task (a claim is split into chunks so a worker's processes share it), and
# threads per worker process calling publishers that honour idempotency keys.
SNS_PUBLISH_CHUNK = env.int("SNS_PUBLISH_CHUNK", default=50)
SNS_PUBLISH_THREADS = env.int("SNS_PUBLISH_THREADS", default=8)
SNS_MAX_ATTEMPTS = env.int("SNS_MAX_ATTEMPTS", default=5)
# Retries granted (on top of SNS_MAX_ATTEMPTS) to calls whose worker died mid-call, when the
# publisher honours idempotency keys; beyond that such a post fails "outcome unknown".
SNS_MAX_LOST_CALLS = env.int("SNS_MAX_LOST_CALLS", default=3)
SNS_BACKOFF_BASE = env.float("SNS_BACKOFF_BASE", default=30.0)  # seconds
SNS_BACKOFF_CAP = env.float("SNS_BACKOFF_CAP", default=3600.0)
if not CELERY_TASK_TIME_LIMIT < SNS_LEASE_SECONDS < _visibility_timeout:
    raise ImproperlyConfigured(
        "Need CELERY_TASK_TIME_LIMIT < SNS_LEASE_SECONDS < CELERY_VISIBILITY_TIMEOUT "
        f"(got {CELERY_TASK_TIME_LIMIT}, {SNS_LEASE_SECONDS}, {_visibility_timeout})."
    )
if SNS_PUBLISH_CHUNK < 1 or SNS_PUBLISH_THREADS < 1:
    raise ImproperlyConfigured(
        f"SNS_PUBLISH_CHUNK and SNS_PUBLISH_THREADS must be at least 1 (got {SNS_PUBLISH_CHUNK}, {SNS_PUBLISH_THREADS})."
    )
if not SNS_PUBLISH_TIMEOUT_SECONDS < CELERY_TASK_SOFT_TIME_LIMIT <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        "Need SNS_PUBLISH_TIMEOUT_SECONDS < CELERY_TASK_SOFT_TIME_LIMIT <= CELERY_TASK_TIME_LIMIT "
        f"(got {SNS_PUBLISH_TIMEOUT_SECONDS}, {CELERY_TASK_SOFT_TIME_LIMIT}, {CELERY_TASK_TIME_LIMIT})."
    )

# --- email: notification outbox (platform_core/notifications.py) -----------------------
# Console locally; SMTP from EMAIL_URL (smtp+tls://user:password@host:587) or EMAIL_HOST & co.
if env.str("EMAIL_URL", default=""):
    _email = env.email_url("EMAIL_URL")
    EMAIL_BACKEND = _email["EMAIL_BACKEND"]
    EMAIL_HOST = _email.get("EMAIL_HOST", "localhost")
    EMAIL_PORT = _email.get("EMAIL_PORT", 25)
    EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
    EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
else:
    EMAIL_HOST = env.str("EMAIL_HOST", default="")
    _smtp_default = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_BACKEND = env.str(
        "EMAIL_BACKEND", default=_smtp_default if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
    )
    EMAIL_HOST = EMAIL_HOST or "localhost"
    EMAIL_PORT = env.int("EMAIL_PORT", default=25)
    EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
    EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
    EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
    EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
if _email_file_path := env.str("EMAIL_FILE_PATH", default=""):
    EMAIL_FILE_PATH = _email_file_path
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="SoftFactory <no-reply@softfactory.local>")
NOTIFICATION_MAX_ATTEMPTS = env.int("NOTIFICATION_MAX_ATTEMPTS", default=8)
NOTIFICATION_BATCH = env.int("NOTIFICATION_BATCH", default=100)
NOTIFICATION_BACKOFF_BASE = env.float("NOTIFICATION_BACKOFF_BASE", default=30.0)  # seconds

# --- auth -------------------------------------------------------------------------------
AUTH_USER_MODEL = "platform_core.User"
PASSWORD_HASHERS = env.list(
    "PASSWORD_HASHERS",
    default=[
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ],
)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- API --------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "platform_core.authentication.TokenAuthentication",
        "platform_core.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "softfactory.negotiation.JSONFirstNegotiation",
    "DEFAULT_PARSER_CLASSES": ["softfactory.parsers.SafeJSONParser"],
    "EXCEPTION_HANDLER": "softfactory.api.exception_handler",
    # ASCII-escaped JSON: a lone surrogate echoed back in an error message can't break rendering.
    "UNICODE_JSON": False,
    "DEFAULT_THROTTLE_RATES": {
        "register": env.str("THROTTLE_REGISTER_RATE", default="60/min"),
    },
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}
# Failed logins per email (API.md): after N failures within the window, 429 until it ends.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
LOGIN_FAILURE_WINDOW_SECONDS = env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=300)

PAYMENT_PROVIDER = env.str("PAYMENT_PROVIDER", default="platform_core.payment_providers.TestProvider")
PAYMENT_TEST_PROVIDER_DELAY_SECONDS = env.float("PAYMENT_TEST_PROVIDER_DELAY_SECONDS", default=0.0)
SPECTACULAR_SETTINGS = {
    "TITLE": "SoftFactory API",
    "DESCRIPTION": "CooCook, SNS, Review and the platform core. Contract: API.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Served from drf-spectacular-sidecar: no page asset comes from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Non-blank strings are `minLength: 1` in the schema: DRF refuses "" for them (fuzzers rely on it).
    "ENFORCE_NON_BLANK_FIELDS": True,
    # 413/414/431/503 are documented on every operation (softfactory.api).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "softfactory.api.schema_common_responses",
    ],
}

# --- operations -------------------------------------------------------------------------
REPLICA_MAX_LAG_SECONDS = env.float("REPLICA_MAX_LAG_SECONDS", default=1.0)
REPLICA_MAX_LAG_BYTES = env.int("REPLICA_MAX_LAG_BYTES", default=16 * 1024 * 1024)
REPLICA_ROUTING_ENABLED = env.bool("REPLICA_ROUTING_ENABLED", default=True)
REPLICA_CHECK_INTERVAL_SECONDS = env.float("REPLICA_CHECK_INTERVAL_SECONDS", default=1.0)
REPLICA_BREAKER_COOLDOWN_SECONDS = env.float("REPLICA_BREAKER_COOLDOWN_SECONDS", default=2.0)
# Must outlive the relaxed lag limit (2 x REPLICA_MAX_LAG_SECONDS), so a write is never forgotten
# while a replica that hasn't replayed it could still be chosen.
REPLICA_POSITION_TTL_SECONDS = env.int("REPLICA_POSITION_TTL_SECONDS", default=30)
REPLICA_POSITION_COOKIE = env.str("REPLICA_POSITION_COOKIE", default="sf_rr")
# Maps a request to its user id for read-your-writes, without a replica read (token cache, session).
ROUTING_CLIENT_RESOLVER = "platform_core.authentication.routing_client_id"
METRICS_ALLOWED_ADDRESSES = env.list("METRICS_ALLOWED_ADDRESSES", default=["127.0.0.1", "::1"])

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
BOOKING_TIME_ZONE = env.str("BOOKING_TIME_ZONE", default="Asia/Seoul")

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "var" / "static")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
