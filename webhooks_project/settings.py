"""Django settings, all from the environment (django-environ).

With nothing set the service runs on embedded defaults: SQLite in var/ and a
Celery broker on the local filesystem, which needs no server. That is safe
because the database row is the truth and the broker only carries wake-ups.
Set DATABASE_URL and REDIS_URL for PostgreSQL and Redis.
"""

import os
from pathlib import Path

import environ

from webhooks_project import conf, logs

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("WEBHOOK_VAR_DIR", BASE_DIR / "var"))

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
E = os.environ
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = conf.read(E, "DEBUG", "false", conf.parse_bool)
# Both defaults are for DEBUG=true only: with DEBUG off a missing SECRET_KEY,
# WEBHOOK_ENCRYPTION_KEYS or ALLOWED_HOSTS stops every process (end of file).
SECRET_KEY = env.str("SECRET_KEY", default=conf.DEV_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["*"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- HTTPS (what `manage.py check --deploy` checks; docs/deploy.md) ------------
# The defaults follow DEBUG: secure in production, out of the way for local
# use. They never break plain-http API calls (tests, the benchmark, a health
# probe): HSTS is only sent on https responses, and cookies are only the
# admin's (the API authenticates with API keys, not cookies).
# Set by a TLS-terminating proxy that also strips it from clients' requests,
# e.g. `X-Forwarded-Proto,https`; unset, request.is_secure() trusts no header.
SECURE_PROXY_SSL_HEADER = conf.read(
    E, "SECURE_PROXY_SSL_HEADER", "", conf.parse_proxy_ssl_header
)
# Opt-in: with it on, a plain-http request is redirected to https, so anything
# that calls the service over plain http (tests, the benchmark) must leave it off.
SECURE_SSL_REDIRECT = conf.read(E, "SECURE_SSL_REDIRECT", "false", conf.parse_bool)
# Health probes and Prometheus scrape from inside, often over plain http; a
# redirect would fail the probe, and would not protect a metrics token anyway
# (the request carrying it has already been sent).
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^metrics$"]
SECURE_HSTS_SECONDS = conf.read(
    E, "SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000", conf.parse_seconds
)
# Only the service's own host's subdomains (*.hooks.example.com): harmless for a
# dedicated host name; turn it off if the service has your apex domain and a
# subdomain of it is not on https.
SECURE_HSTS_INCLUDE_SUBDOMAINS = conf.read(
    E, "SECURE_HSTS_INCLUDE_SUBDOMAINS", "false" if DEBUG else "true", conf.parse_bool
)
SECURE_HSTS_PRELOAD = conf.read(E, "SECURE_HSTS_PRELOAD", "false", conf.parse_bool)
# Secure-only cookies are never sent back over plain http: with DEBUG off, the
# admin's login needs https (or these set to false, e.g. on a trusted LAN).
SESSION_COOKIE_SECURE = conf.read(
    E, "SESSION_COOKIE_SECURE", "false" if DEBUG else "true", conf.parse_bool
)
CSRF_COOKIE_SECURE = conf.read(
    E, "CSRF_COOKIE_SECURE", "false" if DEBUG else "true", conf.parse_bool
)
# security.W021 (no HSTS preload): preloading is consent, for the whole
# registrable domain, to a list built into browsers, which takes months to
# leave: the operator's decision (SECURE_HSTS_PRELOAD), not a deployment
# mistake, so it does not fail the release's `check --deploy`.
SILENCED_SYSTEM_CHECKS = ["security.W021"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "subscriptions",
    "events",
    "delivery",
    "portal",
]

# The signed-in user and messages: Django's own middleware, skipped by API
# paths (webhooks_project/middleware.py).
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "webhooks_project.middleware.AuthenticationMiddleware",
    "webhooks_project.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# A failed CSRF check answers the error envelope (only non-API views meet one),
# or on the customer portal's forms a page.
CSRF_FAILURE_VIEW = "portal.views.csrf_failure"

ROOT_URLCONF = "webhooks_project.urls"
WSGI_APPLICATION = "webhooks_project.wsgi.application"
APPEND_SLASH = False

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
            ]
        },
    }
]

# --- database -------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, beat) share the file: wait for locks
    # instead of failing, and take the write lock up front.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
else:
    # Django's backend with a cheaper per-request health check.
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"]["ENGINE"] = "webhooks_project.postgresql"
    DATABASES["default"]["CONN_MAX_AGE"] = conf.read(E, "DB_CONN_MAX_AGE", "60", int)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = conf.read(
        E, "DB_CONN_HEALTH_CHECKS", "true", conf.parse_bool
    )
    # A lost host or link between a process and PostgreSQL is silence, not a
    # refusal: unbounded, a query waits ~15 min for TCP to give up and a
    # publish hangs instead of answering 503 (tests/multihost). libpq gives up
    # on a connect, on data left unacknowledged, and on a silent idle peer
    # (keepalives) after DB_NETWORK_TIMEOUT. Parameters in DATABASE_URL win.
    DB_NETWORK_TIMEOUT = conf.read(
        E, "DB_NETWORK_TIMEOUT", "5s", conf.parse_positive_duration
    ).total_seconds()
    DATABASES["default"]["OPTIONS"] = {
        "connect_timeout": max(2, round(DB_NETWORK_TIMEOUT)),  # libpq's minimum
        "tcp_user_timeout": max(1, round(DB_NETWORK_TIMEOUT * 1000)),
        "keepalives": 1,
        "keepalives_idle": max(1, round(DB_NETWORK_TIMEOUT / 2)),
        "keepalives_interval": 1,
        "keepalives_count": 3,
        **DATABASES["default"].get("OPTIONS", {}),
    }
# Behind PgBouncer's transaction pooling (docs/deploy.md) each transaction may
# run on another server session: nothing may rely on session state, so no
# server-side cursors (QuerySet.iterator()) and no PREPAREd statements.
DB_TRANSACTION_POOLING = conf.read(
    E, "DB_TRANSACTION_POOLING", "false", conf.parse_bool
)
if DB_TRANSACTION_POOLING:
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker and cache ----------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _queue_dir = VAR_DIR / "broker"
    _queue_dir.mkdir(exist_ok=True)  # kombu's filesystem transport does not
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_queue_dir),
        "control_folder": str(_queue_dir / "control"),  # else ./control
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # A lost or unacked wake-up only delays a delivery (dispatch_due finds the
    # row again), so a short visibility timeout is safe and speeds recovery.
    # A broker that does not answer must not stall a publish's wake-ups for long.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 300,
        "socket_connect_timeout": 3,
    }
# RabbitMQ (amqp://) needs no options: it redelivers a worker's unacked
# messages as soon as that worker's connection drops (no visibility timeout),
# and CELERY_BROKER_CONNECTION_TIMEOUT's 4 s bounds a connect.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_ALWAYS_EAGER = False
# Celery closes Django's DB connection around every task unless this is set;
# workers run many short tasks, so keep connections (bounded by the pool size).
CELERY_DB_REUSE_MAX = 1000

# --- API --------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["subscriptions.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": (
        "webhooks_project.negotiation.ContentNegotiation"
    ),
    "DEFAULT_PARSER_CLASSES": ["webhooks_project.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["subscriptions.throttling.ApiKeyRateThrottle"],
    "EXCEPTION_HANDLER": "webhooks_project.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Webhooks API",
    "DESCRIPTION": "Self-hosted webhook delivery service.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}
# Request bodies larger than this are refused (413) before they are parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = conf.read(
    E, "WEBHOOK_MAX_REQUEST_BYTES", "2MiB", conf.parse_size
)

# --- static files -----------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns at start-up if it is missing
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# One JSON object per line by default (what log collectors parse); LOG_FORMAT=text
# for a human at a terminal.
LOG_FORMAT = conf.read(E, "LOG_FORMAT", "json", logs.parse_log_format)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "webhooks_project.logs.JsonFormatter"},
        "text": {"()": "webhooks_project.logs.TextFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# --- the product's own settings (docs/deploy.md, "Environment variables") -----
WEBHOOK_SUBSCRIPTION_TTL = conf.read(
    E, "WEBHOOK_SUBSCRIPTION_TTL", "30d", conf.parse_duration
)
# Per-tenant quota (docs/security.md, "Tenant isolation"): the live webhooks
# one client may have, so one tenant cannot grow every event's fan-out at will.
WEBHOOK_MAX_WEBHOOKS_PER_CLIENT = conf.read(
    E, "WEBHOOK_MAX_WEBHOOKS_PER_CLIENT", "10000", conf.parse_positive_int
)
# Per-event quota (docs/security.md, "Tenant isolation"): the deliveries one
# event may create; a publish past it is a 409 and writes nothing. A public
# event reaches every client's webhooks tracking its resource, so the
# per-client quota above does not bound it.
WEBHOOK_MAX_FANOUT = conf.read(
    E, "WEBHOOK_MAX_FANOUT", "10000", conf.parse_positive_int
)
# The most webhooks one page of GET /api/v1/webhooks/ carries (the next page
# is a Link header): bounds the work and the size of one answer.
WEBHOOK_LIST_PAGE_SIZE = conf.read(
    E, "WEBHOOK_LIST_PAGE_SIZE", "1000", conf.parse_positive_int
)
WEBHOOK_DELIVERY_TTL = conf.read(E, "WEBHOOK_DELIVERY_TTL", "24h", conf.parse_duration)
# The longest configuration.delivery_ttl a webhook may ask for (a longer one is
# a 400): it bounds how long the deliveries of one receiver can pile up.
WEBHOOK_MAX_DELIVERY_TTL = conf.read(
    E, "WEBHOOK_MAX_DELIVERY_TTL", "7d", conf.parse_duration
)
WEBHOOK_RETRY_SCHEDULE = conf.read(
    E,
    "WEBHOOK_RETRY_SCHEDULE",
    "10s,30s,1m,5m,10m,30m,1h,3h,6h,12h",
    conf.parse_schedule,
)
WEBHOOK_RETRY_JITTER = conf.read(E, "WEBHOOK_RETRY_JITTER", "10%", conf.parse_fraction)
WEBHOOK_RETRY_AFTER_MAX = conf.read(
    E, "WEBHOOK_RETRY_AFTER_MAX", "1h", conf.parse_duration
)
# Operational notifications (webhook.paused, webhook.disabled, webhook.expired,
# webhook.recovered, delivery.exhausted) for the operator: signed Standard
# Webhooks POSTs to this URL with this secret (whsec_…); empty: none.
WEBHOOK_OPERATIONAL_URL = env.str("WEBHOOK_OPERATIONAL_URL", default="")
WEBHOOK_OPERATIONAL_SECRET = env.str("WEBHOOK_OPERATIONAL_SECRET", default="")
if WEBHOOK_OPERATIONAL_URL and not WEBHOOK_OPERATIONAL_SECRET.startswith("whsec_"):
    raise conf.ImproperlyConfigured(
        "WEBHOOK_OPERATIONAL_URL is set: WEBHOOK_OPERATIONAL_SECRET must be a "
        "signing secret (whsec_ and base64, e.g. from POST /api/v1/webhooks)"
    )
# The longest a destination's 429/503 Retry-After postpones every delivery to
# it (all tenants' webhooks); 0s turns destination-wide backpressure off.
WEBHOOK_BACKPRESSURE_MAX = conf.read(
    E, "WEBHOOK_BACKPRESSURE_MAX", "5m", conf.parse_duration
)
# A default rate limit per destination (scheme://host:port), e.g. 50/s or
# 3000/m, shared by all workers (Redis); empty (the default): none.
WEBHOOK_HOST_RATE_LIMIT = conf.read(
    E, "WEBHOOK_HOST_RATE_LIMIT", "", conf.parse_optional_rate
)
WEBHOOK_CONFLICT_RETRY_INTERVAL = conf.read(
    E, "WEBHOOK_CONFLICT_RETRY_INTERVAL", "1m", conf.parse_duration
)
WEBHOOK_PAUSE_AFTER_FAILURES = conf.read(
    E, "WEBHOOK_PAUSE_AFTER_FAILURES", "10", conf.parse_positive_int
)
WEBHOOK_MAX_PAYLOAD_BYTES = conf.read(
    E, "WEBHOOK_MAX_PAYLOAD_BYTES", "256KiB", conf.parse_size
)
WEBHOOK_CONNECT_TIMEOUT = conf.read(
    E, "WEBHOOK_CONNECT_TIMEOUT", "3s", conf.parse_duration
)
WEBHOOK_TIMEOUT = conf.read(E, "WEBHOOK_TIMEOUT", "10s", conf.parse_duration)
WEBHOOK_RESPONSE_EXCERPT_BYTES = conf.read(
    E, "WEBHOOK_RESPONSE_EXCERPT_BYTES", "4KiB", conf.parse_size
)
WEBHOOK_DISPATCH_INTERVAL = conf.read(
    E, "WEBHOOK_DISPATCH_INTERVAL", "1s", conf.parse_duration
)
WEBHOOK_CLAIM_LEASE = conf.read(E, "WEBHOOK_CLAIM_LEASE", "1m", conf.parse_duration)
WEBHOOK_COUNTDOWN_MAX = conf.read(E, "WEBHOOK_COUNTDOWN_MAX", "1m", conf.parse_duration)
# While publishing is busy a web process sends wake-ups at most this often
# (summing their counts; twice this while each sums 8 publishes or more:
# delivery/pipeline/wakeups.py); an idle one sends at once.
WEBHOOK_WAKEUP_INTERVAL = conf.read(
    E, "WEBHOOK_WAKEUP_INTERVAL", "50ms", conf.parse_duration
)
WEBHOOK_BATCH_SIZE = conf.read(E, "WEBHOOK_BATCH_SIZE", "200", conf.parse_positive_int)
WEBHOOK_HTTP_CONCURRENCY = conf.read(
    E, "WEBHOOK_HTTP_CONCURRENCY", "128", conf.parse_positive_int
)
WEBHOOK_BREAKER_THRESHOLD = conf.read(
    E, "WEBHOOK_BREAKER_THRESHOLD", "5", conf.parse_positive_int
)
WEBHOOK_BREAKER_COOLDOWN = conf.read(
    E, "WEBHOOK_BREAKER_COOLDOWN", "30s", conf.parse_duration
)
# Events, their deliveries and attempts older than this are pruned (beat).
# WEBHOOK_RETENTION_DAYS (a number of days) is its older spelling.
WEBHOOK_RETENTION = conf.read(
    E,
    "WEBHOOK_RETENTION",
    f"{E.get('WEBHOOK_RETENTION_DAYS', '30')}d",
    conf.parse_positive_duration,
)
# How often beat expires deliveries/subscriptions and prunes old rows.
WEBHOOK_EXPIRE_INTERVAL = conf.read(
    E, "WEBHOOK_EXPIRE_INTERVAL", "5s", conf.parse_duration
)
# The share of its time the prune works; it rests the rest (delivery/retention.py).
WEBHOOK_PRUNE_DUTY = conf.read(E, "WEBHOOK_PRUNE_DUTY", "20%", conf.parse_fraction)
if WEBHOOK_PRUNE_DUTY <= 0:
    raise conf.ImproperlyConfigured("WEBHOOK_PRUNE_DUTY must be more than 0%")
WEBHOOK_PRUNE_INTERVAL = conf.read(
    E, "WEBHOOK_PRUNE_INTERVAL", "1h", conf.parse_duration
)
# Deliveries and OAuth2 token requests go out through this HTTP proxy, a
# CONNECT tunnel per connection (delivery/sender/proxy.py), e.g.
# `http://user:password@egress.internal:3128`; unset, they go out directly.
WEBHOOK_EGRESS_PROXY = conf.read(
    E, "WEBHOOK_EGRESS_PROXY", "", conf.parse_egress_proxy, secret=True
)
# Destination hosts that bypass it: names (and their subdomains), addresses,
# CIDRs, or `*`.
WEBHOOK_NO_PROXY = conf.read(E, "WEBHOOK_NO_PROXY", "", conf.parse_no_proxy)
WEBHOOK_ALLOW_PRIVATE_DESTINATIONS = conf.read(
    E, "WEBHOOK_ALLOW_PRIVATE_DESTINATIONS", "false", conf.parse_bool
)
# Addresses the SSRF guard lets through although they are private: CIDRs
# (any port) or address:port pairs, e.g. 10.8.0.0/16,127.0.0.1:9000. Off
# (empty) by default; unlike WEBHOOK_ALLOW_PRIVATE_DESTINATIONS the guard
# still vets every other address.
WEBHOOK_SSRF_ALLOWLIST = conf.read(
    E, "WEBHOOK_SSRF_ALLOWLIST", "", conf.parse_address_allowlist
)
# The longest a destination's name lookup may take (at creation and before
# every attempt; delivery/sender/ssrf.py): past it the host is unresolvable.
WEBHOOK_DNS_TIMEOUT = conf.read(E, "WEBHOOK_DNS_TIMEOUT", "2s", conf.parse_duration)
if WEBHOOK_DNS_TIMEOUT.total_seconds() <= 0:
    raise conf.ImproperlyConfigured(
        "WEBHOOK_DNS_TIMEOUT must be more than 0s, or no name would ever resolve"
    )
# Attempt log lines name the destination as scheme://host:port/…#<digest of the
# path>, since receivers put credentials in paths; true logs the path (never
# the query string or user info) for debugging.
WEBHOOK_LOG_FULL_URLS = conf.read(E, "WEBHOOK_LOG_FULL_URLS", "false", conf.parse_bool)
WEBHOOK_SECRET_ROTATION_OVERLAP = conf.read(
    E, "WEBHOOK_SECRET_ROTATION_OVERLAP", "24h", conf.parse_duration
)
WEBHOOK_ENCRYPTION_KEYS = env.list("WEBHOOK_ENCRYPTION_KEYS", default=[])
# A CA bundle (PEM path) to verify receivers' TLS certificates against instead
# of the system's; verification itself cannot be turned off.
WEBHOOK_CA_BUNDLE = env.str("WEBHOOK_CA_BUNDLE", default="")
WEBHOOK_THROTTLE_RATE = env.str("WEBHOOK_THROTTLE_RATE", default="6000/min")
WEBHOOK_PUBLISH_THROTTLE_RATE = env.str(
    "WEBHOOK_PUBLISH_THROTTLE_RATE", default="300000/min"
)
# /metrics needs this bearer token whenever DEBUG is off (with DEBUG=true and no
# token, loopback and private clients may scrape, for local use).
WEBHOOK_METRICS_TOKEN = env.str("WEBHOOK_METRICS_TOKEN", default="")
# Client networks that may scrape /metrics without the token, e.g.
# 10.0.5.0/24,127.0.0.1. Off (empty) by default. Judged by the connecting
# peer's address (REMOTE_ADDR): behind a reverse proxy never list the proxy.
WEBHOOK_METRICS_ALLOW_CIDRS = conf.read(
    E, "WEBHOOK_METRICS_ALLOW_CIDRS", "", conf.parse_networks
)
# How long a web process keeps an API key, event type or tenant it looked up,
# and a worker the terminal event types (webhooks_project/lookups.py): a
# revoked key stops working within this time on every process. 0 turns the
# caches off.
WEBHOOK_LOOKUP_CACHE_TTL = conf.read(
    E, "WEBHOOK_LOOKUP_CACHE_TTL", "500ms", conf.parse_duration
)
# The customer portal (docs/portal.md): how long the browser session a
# one-time link opens lasts, and the sites that may show the portal in a
# frame (CSP frame-ancestors; empty: none may, with X-Frame-Options DENY).
WEBHOOK_PORTAL_SESSION_TTL = conf.read(
    E, "WEBHOOK_PORTAL_SESSION_TTL", "1h", conf.parse_duration
)
WEBHOOK_PORTAL_FRAME_ANCESTORS = conf.read(
    E, "WEBHOOK_PORTAL_FRAME_ANCESTORS", "", conf.parse_frame_ancestors
)

if WEBHOOK_CLAIM_LEASE <= WEBHOOK_TIMEOUT:
    raise conf.ImproperlyConfigured(
        "WEBHOOK_CLAIM_LEASE must be longer than WEBHOOK_TIMEOUT, or a slow attempt "
        "could be claimed and sent a second time while it is still running"
    )

if not DEBUG:
    # Raised here, at import, so that web, worker, beat and release (migrate)
    # all refuse to start, instead of running on a secret from the source and
    # encryption keys derived from it.
    _problem = conf.production_problem(
        secret_key=SECRET_KEY,
        encryption_keys=WEBHOOK_ENCRYPTION_KEYS,
        allowed_hosts=ALLOWED_HOSTS,
    )
    if _problem:
        raise conf.ImproperlyConfigured(_problem)
