"""SoftFactory settings: one file, every difference between environments is an env value.

Variables are listed in .env.example. The local stack (scripts/stack) writes var/stack.env with
the addresses of its own servers; it fills in whatever the environment leaves unset, so
`manage.py` and pytest work in a checkout without sourcing anything. Nothing here talks to a
database or Redis: gunicorn imports settings before it forks.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import environ
from django.core.exceptions import ImproperlyConfigured

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
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "softfactory.parsers.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "softfactory.positions.RoutingMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
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
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
# cached_db: a Redis restart or outage logs nobody out; the database row is the truth.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_CACHE_ALIAS = "sessions"

# --- Celery (docs/SCHEDULING.md) -------------------------------------------------------
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True  # a task whose worker dies before finishing is delivered again
CELERY_TASK_REJECT_ON_WORKER_LOST = True  # ...also when only its pool child was killed
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # few unstarted messages stranded on a dead worker
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=90)  # below the SNS claim lease
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)}
CELERY_TASK_IGNORE_RESULT = True  # state lives in the database rows; no result backend
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True

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
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
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
