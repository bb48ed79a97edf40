"""Django settings, read from the environment through strict helpers (see .env.example)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from penguinmails.env import env_bool, env_int, env_list, env_str
from penguinmails.providers import DnsProviderName

BASE_DIR = Path(__file__).resolve().parent.parent

# --- Core -----------------------------------------------------------------------------------
DEBUG = env_bool("DEBUG", default=False)
SECRET_KEY = env_str("SECRET_KEY")
BASE_DOMAIN = env_str("BASE_DOMAIN", default="localhost").lower()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", default=[BASE_DOMAIN, f".{BASE_DOMAIN}"])
# Where links in emails and redirects between hosts point: scheme and optional port.
SITE_SCHEME = env_str("SITE_SCHEME", default="http" if DEBUG else "https")
SITE_PORT = env_str("SITE_PORT", default="8000" if DEBUG else "")
# Comma-separated Fernet keys, newest first (MultiFernet): secrets at rest are encrypted with them.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS")
# Which deployment this is (docs/deployment.md, "Staging"): development (DEBUG), staging or
# production. Staging runs the production image and settings, with the differences below marked
# STAGING: no live Stripe key, a short HSTS without preload, `.test` lead addresses accepted.
ENVIRONMENT = env_str("DJANGO_ENV", default="development" if DEBUG else "production").lower()
if ENVIRONMENT not in ("development", "staging", "production"):
    raise ImproperlyConfigured(
        f"Environment variable DJANGO_ENV must be development, staging or production, "
        f"got {ENVIRONMENT!r}."
    )
STAGING = ENVIRONMENT == "staging"

# --- External services (empty = use the local implementation) ---------------------------------
HOSTWIND_API_KEY = env_str("HOSTWIND_API_KEY", default="")
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET", default="")
if STAGING and STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_")):  # STAGING
    raise ImproperlyConfigured(
        "Environment variable STRIPE_SECRET_KEY holds a live key; staging takes test keys only."
    )
# Where the stripe package sends API calls: Stripe itself, or the local Stripe (`sandbox stripe`).
STRIPE_API_BASE = env_str("STRIPE_API_BASE", default="https://api.stripe.com")
STRIPE_TIMEOUT_SECONDS = float(env_int("STRIPE_TIMEOUT_SECONDS", default=20))
STRIPE_CURRENCY = env_str("STRIPE_CURRENCY", default="usd")
SANDBOX_STRIPE_PORT = env_int("SANDBOX_STRIPE_PORT", default=8420)
# Dunning (docs/billing.md): days of sending after a failed payment, then days until the servers
# are suspended (counted from the failure); staff are alerted under this margin (percent).
BILLING_GRACE_DAYS = env_int("BILLING_GRACE_DAYS", default=7)
BILLING_SUSPEND_DAYS = env_int("BILLING_SUSPEND_DAYS", default=30)
BILLING_MARGIN_FLOOR = env_int("BILLING_MARGIN_FLOOR", default=20)
LOOP_API_KEY = env_str("LOOP_API_KEY", default="")
LOOP_API_URL = env_str("LOOP_API_URL", default="https://app.loops.so/api/v1")
# name=transactionalId pairs, e.g. "verify_email=clx..,password_reset=clx..,invitation=clx.."
LOOP_TRANSACTIONAL_IDS = dict(
    item.split("=", 1) for item in env_list("LOOP_TRANSACTIONAL_IDS", default=[]) if "=" in item
)
LOOP_TIMEOUT_SECONDS = float(env_int("LOOP_TIMEOUT_SECONDS", default=10))
LOOP_RETRY_BACKOFF_MS = env_int("LOOP_RETRY_BACKOFF_MS", default=500)
POSTHOG_API_KEY = env_str("POSTHOG_API_KEY", default="")
POSTHOG_HOST = env_str("POSTHOG_HOST", default="https://us.i.posthog.com")

# --- Applications ---------------------------------------------------------------------------
SHARED_APPS = [
    "django_tenants",
    "tenants",
    "billing",
    "infrastructure",
    "penguinmails",
    "penguinmails.backups",  # backup records (docs/operations.md): public only
    # The one transition log (docs/states.md): in both lists, so the table exists in public and
    # in every tenant schema and each object's history lives beside it.
    "penguinmails.history",
    "penguinmails.alerts",  # the alert engine (docs/operations.md, "Alerts"): public only
    # Blocklist listings of IPs live in public beside the IPs; scores of mailboxes and domains in
    # the tenant's schema (docs/reputation.md).
    "reputation",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    # django.contrib.admin with our site: staff writes audited (tenants/adminsite.py).
    "tenants.adminconfig.StaffAdminConfig",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files (offline, no CDN)
    "django_filters",
    "django_htmx",
]
# Sessions live in each tenant's schema, so a session made on one tenant's host is unknown on
# another's even if its cookie is copied across.
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "penguinmails.history",
    "deliverability",  # sending domains (docs/domains.md)
    "warmup",  # the warm-up ramp and sends (docs/warmup.md)
    "reputation",  # scores and domain listings (docs/reputation.md)
    "campaigns",  # templates, leads, campaigns (docs/templates.md)
    "webhooks",  # outgoing webhooks: endpoints, deliveries, attempts (docs/webhooks.md)
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_NAME = "public"
# New tenants are cloned from this schema (kept migrated by migrate_schemas as a hidden tenant)
# instead of replaying every migration.
TENANT_TEMPLATE_SCHEMA = "tenant_template"
TENANT_BASE_SCHEMA = TENANT_TEMPLATE_SCHEMA
TENANT_CREATION_FAKES_MIGRATIONS = True
PUBLIC_SCHEMA_URLCONF = "penguinmails.urls_public"
ROOT_URLCONF = "penguinmails.urls_tenant"
SHOW_PUBLIC_IF_NO_TENANT_FOUND = False
# Issue `SET search_path` once per schema switch instead of before every query: it halves the
# statements of a dashboard page and of a job (django-tenants re-issues it after a rollback).
TENANT_LIMIT_SET_CALLS = True

MIDDLEWARE = [
    "penguinmails.metrics.middleware.MetricsMiddleware",  # /metrics; times every request below
    "penguinmails.health.HealthCheckMiddleware",  # answers /health* before tenant lookup
    "penguinmails.alerts.middleware.AlertCountersMiddleware",  # 5xx and slow-query counts
    "penguinmails.api.middleware.ApiInputMiddleware",  # API: JSON 413 for big bodies, 400 for NUL
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "tenants.middleware.TenantHostMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tenants.middleware.MembershipMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "tenants.web.DashboardMiddleware",  # DomainError pages, sidebar nav
]

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
                "tenants.context_processors.workspace",
                "billing.context_processors.billing_banner",
            ],
        },
    },
]

WSGI_APPLICATION = "penguinmails.wsgi.application"

# --- Data stores ----------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        engine="django_tenants.postgresql_backend",
        # Connections are recycled: PostgreSQL caches catalog entries for every schema a
        # connection touches, so a connection that has visited thousands of tenants grows large.
        conn_max_age=env_int("DB_CONN_MAX_AGE", default=60),
        conn_health_checks=True,
    )
}
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")


def _redis_for_celery(url: str) -> str:
    """kombu names a unix-socket Redis `redis+socket://PATH`; redis-py names it `unix://PATH`."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"redis+socket://{parts.path}" + (f"?{parts.query}" if parts.query else "")
    return url


CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        # Every key is prefixed with the current schema, so tenants never read each other's.
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
    }
}

# --- Auth -----------------------------------------------------------------------------------
AUTH_USER_MODEL = "tenants.User"
AUTHENTICATION_BACKENDS = ["tenants.auth.EmailBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
# Brute-force protection: failed logins allowed per window, per account and per client address.
LOGIN_MAX_FAILURES_PER_ACCOUNT = env_int("LOGIN_MAX_FAILURES_PER_ACCOUNT", default=5)
LOGIN_MAX_FAILURES_PER_IP = env_int("LOGIN_MAX_FAILURES_PER_IP", default=30)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", default=900)

SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_NAME = "pm_session"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_NAME = "pm_csrftoken"

# --- Email ----------------------------------------------------------------------------------
# The sandbox SMTP server (dev/test stand-in for Mailu): `manage.py sandbox smtp`.
SANDBOX_SMTP_HOST = env_str("SANDBOX_SMTP_HOST", default="127.0.0.1")
SANDBOX_SMTP_PORT = env_int("SANDBOX_SMTP_PORT", default=2525)
SANDBOX_SMTP_USER = env_str("SANDBOX_SMTP_USER", default="sandbox")
SANDBOX_SMTP_PASSWORD = env_str("SANDBOX_SMTP_PASSWORD", default="sandbox")
SANDBOX_MAILDIR = Path(
    env_str("SANDBOX_MAILDIR", default=str(BASE_DIR / ".local" / "sandbox-mail"))
)

# In DEBUG, Django's own mail goes through the sandbox (it requires AUTH like Mailu does).
EMAIL_HOST = env_str("EMAIL_HOST", default=SANDBOX_SMTP_HOST)
EMAIL_PORT = env_int("EMAIL_PORT", default=SANDBOX_SMTP_PORT)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", default=SANDBOX_SMTP_USER if DEBUG else "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", default=SANDBOX_SMTP_PASSWORD if DEBUG else "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
EMAIL_BACKEND = env_str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", default=f"PenguinMails <no-reply@{BASE_DOMAIN}>")

# --- Static and media -----------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    # Uploads go under MEDIA_ROOT/<schema>/, one folder per tenant.
    "default": {"BACKEND": "django_tenants.files.storage.TenantFileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            # Compressed and hashed (collectstatic at deploy); unhashed if that step was skipped.
            else "penguinmails.staticfiles.StaticFilesStorage"
        )
    },
}
# Without collectstatic's output, whitenoise serves the apps' static folders directly.
WHITENOISE_USE_FINDERS = DEBUG or not (STATIC_ROOT / "staticfiles.json").exists()
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", default=str(BASE_DIR / "media")))
MEDIA_URL = "/media/"
MULTITENANT_RELATIVE_MEDIA_ROOT = "%s"

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.rest.authentication.ApiKeyAuthentication",
        "tenants.rest.authentication.TenantSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.rest.permissions.IsTenantMember"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's JSONParser with a size limit and depth/NUL/surrogate checks (docs/api.md, Limits).
    "DEFAULT_PARSER_CLASSES": ["penguinmails.api.parsers.LimitedJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "penguinmails.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "penguinmails.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["penguinmails.api.throttling.TenantRateThrottle"],
    # Read at request time by TenantRateThrottle, so a changed setting applies at once.
    "DEFAULT_THROTTLE_RATES": {"tenant": env_str("API_THROTTLE_RATE", default="1200/min")},
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "PenguinMails API",
    "DESCRIPTION": (
        "Tenant-scoped REST API, served on each workspace's host (`<slug>.<base domain>`). "
        "Authenticate with `Authorization: Bearer <API key>`. See docs/api.md."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # The schema and docs page describe the API, not a tenant's data: readable without a key.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Swagger UI and Redoc from drf-spectacular-sidecar's static files, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Two choice sets share the field name `kind`: give each enum its own schema name.
    "ENUM_NAME_OVERRIDES": {
        "MailboxKindEnum": "deliverability.models.MailboxKind",
        "EventKindEnum": "campaigns.models.EventKind",
        "EndpointStatusEnum": "webhooks.models.EndpointStatus",
    },
}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = _redis_for_celery(REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# The durable job queue (docs/queue.md). Messages are acknowledged after the task ran, one at a
# time, and requeued when the pool process running them dies: a job's id is never dropped.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup otherwise closes the database connection around every task, which costs
# a new PostgreSQL connection per job; Django's CONN_MAX_AGE still recycles them.
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Workers drain -Q high,default,low strictly in that order.
    "queue_order_strategy": "priority",
    # Unacknowledged messages of a lost worker come back after this; PostgreSQL leases (below)
    # usually recover the job sooner, and a late duplicate is refused by the claim.
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", default=3600),
}
JOB_MIGRATE_BATCH = env_int("JOB_MIGRATE_BATCH", default=500)
# The migrator puts up to this many jobs of a queue in one Celery message (queue/batch.py).
JOB_MESSAGE_BATCH = env_int("JOB_MESSAGE_BATCH", default=10)
# The migrator stops topping up the broker above this many waiting jobs.
JOB_BROKER_MAX_BACKLOG = env_int("JOB_BROKER_MAX_BACKLOG", default=5000)
# An enqueued job not started within this is assumed lost in Redis and re-queued.
JOB_ENQUEUED_LEASE_SECONDS = env_int("JOB_ENQUEUED_LEASE_SECONDS", default=300)
# A running job's lease; its worker renews it every third of this while the handler runs.
JOB_RUNNING_LEASE_SECONDS = env_int("JOB_RUNNING_LEASE_SECONDS", default=60)
JOB_RETRY_BASE_SECONDS = env_int("JOB_RETRY_BASE_MS", default=2000) / 1000
JOB_RETENTION_COMPLETED_DAYS = env_int("JOB_RETENTION_COMPLETED_DAYS", default=7)

# --- Metrics and health (docs/operations.md, "Metrics and health") ----------------------------
# /metrics answers only a bearer of this token (404 while unset), from these networks (CIDRs;
# empty: any). Processes count into files under PROMETHEUS_MULTIPROC_DIR (read by prometheus-client
# itself at import; one directory per host, shared by web, worker and beat).
METRICS_TOKEN = env_str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", default=[])
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR", default="")
METRICS_QUERY_TIMEOUT_MS = env_int("METRICS_QUERY_TIMEOUT_MS", default=2000)
# Every health endpoint answers within this (its probes run against this deadline) or fails.
HEALTH_TIMEOUT_MS = env_int("HEALTH_TIMEOUT_MS", default=80)
# /health/queue fails when due jobs have waited this long while no job started or finished.
HEALTH_QUEUE_STALL_SECONDS = env_int("HEALTH_QUEUE_STALL_SECONDS", default=120)
# ... and when beat's heartbeat (written every 10 s through the high queue) is older than this.
HEALTH_BEAT_STALE_SECONDS = env_int("HEALTH_BEAT_STALE_SECONDS", default=60)

# --- Security (production values; `manage.py check --deploy` is clean with DEBUG=false) -------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^health(/|$)"]
# STAGING: an hour, this host only, never preloaded (a staging name must not pin the production
# domain's subdomains to HTTPS in browsers' preload lists).
SECURE_HSTS_SECONDS = 0 if DEBUG else (3600 if STAGING else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG and not STAGING
SECURE_HSTS_PRELOAD = not DEBUG and not STAGING
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = [
    f"{SITE_SCHEME}://{host}{':' + SITE_PORT if SITE_PORT else ''}"
    for host in (BASE_DOMAIN, f"*.{BASE_DOMAIN}")
]

# --- I18N -----------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # runserver's access log follows LOG_LEVEL too (`make run` sets WARNING unless VERBOSE).
        "django.server": {"level": env_str("LOG_LEVEL", default="INFO")},
    },
}

# --- Infrastructure (issue 4: VPS providers, Mailu servers) ----------------------------------
# A VpsProviderName (hostwinds or local); empty chooses Hostwinds when HOSTWIND_API_KEY is set,
# else local.
VPS_PROVIDER = env_str("VPS_PROVIDER", default="").strip().lower()
HOSTWINDS_API_URL = env_str(
    "HOSTWINDS_API_URL", default="https://clients.hostwinds.com/cloud/api.php"
)
HOSTWINDS_TIMEOUT_SECONDS = env_int("HOSTWINDS_TIMEOUT_SECONDS", default=30)
# Hostwinds ids are configuration (no API lists them reliably): `location_id` (integer),
# `template` (image uuid) and `rid` per VPS size, as "size=rid" pairs, e.g. "small=123,large=456".
HOSTWINDS_LOCATION_ID = env_str("HOSTWINDS_LOCATION_ID", default="")
HOSTWINDS_IMAGE_ID = env_str("HOSTWINDS_IMAGE_ID", default="")
HOSTWINDS_PLAN_IDS = dict(
    item.split("=", 1) for item in env_list("HOSTWINDS_PLAN_IDS", default=[]) if "=" in item
)
HOSTWINDS_SSH_KEYS = env_list("HOSTWINDS_SSH_KEYS", default=[])  # key names known to Hostwinds
# UNVERIFIED vendor names, empty until confirmed: the add_instance field carrying cloud-init
# user data, and the action that orders an extra IPv4 (see docs/infrastructure.md).
HOSTWINDS_USER_DATA_FIELD = env_str("HOSTWINDS_USER_DATA_FIELD", default="")
HOSTWINDS_ORDER_IP_ACTION = env_str("HOSTWINDS_ORDER_IP_ACTION", default="")
# The local provider's records, shared by web, worker and beat.
LOCAL_VPS_STATE_FILE = Path(
    env_str("LOCAL_VPS_STATE_FILE", default=str(BASE_DIR / ".local" / "vps.json"))
)
LOCAL_VPS_MAX_SECONDARY_IPS = env_int("LOCAL_VPS_MAX_SECONDARY_IPS", default=4)
# Mailu on each VPS: image tag, DKIM selector (Mailu's default is "dkim"), TLS flavor.
MAILU_VERSION = env_str("MAILU_VERSION", default="2024.06")
MAILU_DKIM_SELECTOR = env_str("MAILU_DKIM_SELECTOR", default="dkim")
MAILU_TLS_FLAVOR = env_str("MAILU_TLS_FLAVOR", default="letsencrypt")
# Hardening and resources (docs/infrastructure.md, "Firewall" and "Resources"). CIDRs that may
# reach each server's SSH (22) and node_exporter (9100): staff and the control plane's egress
# addresses (checked at startup). Empty: SSH and the exporter are closed to everyone.
STAFF_NETWORKS = env_list("STAFF_NETWORKS", default=[])
# node_exporter's page on a server: {ip} is its main IP, {hostname} its host name.
NODE_EXPORTER_URL_TEMPLATE = env_str(
    "NODE_EXPORTER_URL_TEMPLATE", default="http://{ip}:9100/metrics"
)
NODE_EXPORTER_TIMEOUT_SECONDS = env_int("NODE_EXPORTER_TIMEOUT_SECONDS", default=5)
# Each server's resources are read this often (spread over the interval) and kept this long.
VPS_RESOURCES_INTERVAL_SECONDS = env_int("VPS_RESOURCES_INTERVAL_SECONDS", default=300)
VPS_RESOURCE_RETENTION_HOURS = env_int("VPS_RESOURCE_RETENTION_HOURS", default=48)
# Memory of a server by plan size, "size=MB" pairs; Mailu's antivirus (ClamAV, ~1.5 GB resident)
# runs on servers with at least ANTIVIRUS_MIN_MEMORY_MB, and is off on smaller ones.
VPS_MEMORY_MB = dict(
    item.split("=", 1)
    for item in env_list("VPS_MEMORY_MB", default=["small=2048", "medium=4096", "large=16384"])
    if "=" in item
)
ANTIVIRUS_MIN_MEMORY_MB = env_int("ANTIVIRUS_MIN_MEMORY_MB", default=3072)
# Where a provisioned server's Mailu admin API answers ({hostname} is the server's mail host).
MAILU_API_URL_TEMPLATE = env_str("MAILU_API_URL_TEMPLATE", default="https://{hostname}/api/v1")
# Provisioning: seconds between polls of a server that is not active yet (backs off from this),
# and the domain mail hosts are named under (default BASE_DOMAIN).
INFRA_POLL_SECONDS = env_int("INFRA_POLL_SECONDS", default=15)
INFRA_MAIL_DOMAIN = env_str("INFRA_MAIL_DOMAIN", default="")

# --- Leads (docs/leads.md) ------------------------------------------------------------------
# Rows a lead import commits at a time (its progress moves in these steps).
LEAD_IMPORT_BATCH_SIZE = env_int("LEAD_IMPORT_BATCH_SIZE", default=50000)
# Lead addresses under `.test` (RFC 6761, e.g. the demo's demo-agency.test): accepted where the
# sandbox captures all mail (DEBUG), refused as special-use names in production.
# STAGING accepts them too: its smoke test imports leads at example .test addresses.
ALLOW_TEST_EMAIL_DOMAINS = env_bool("ALLOW_TEST_EMAIL_DOMAINS", default=DEBUG or STAGING)

# --- DNS (sending domains: records, verification, publishing; see docs/dns.md) ----------------
# Resolvers verification asks, as host:port (empty = the system resolver). `make run` and tests
# point this at the sandbox DNS server.
DNS_RESOLVERS = env_list("DNS_RESOLVERS", default=[])
DNS_TIMEOUT = float(env_int("DNS_TIMEOUT", default=3))
# manual (the tenant publishes), local (the sandbox DNS server) or cloudflare.
DNS_PROVIDER = env_str(
    "DNS_PROVIDER", default=DnsProviderName.LOCAL if DEBUG else DnsProviderName.MANUAL
)
CLOUDFLARE_API_TOKEN = env_str("CLOUDFLARE_API_TOKEN", default="")
CLOUDFLARE_API_URL = env_str("CLOUDFLARE_API_URL", default="https://api.cloudflare.com/client/v4")
# (The DKIM selector is MAILU_DKIM_SELECTOR: records use the one Mailu signs with.)
# Sending domains (docs/domains.md): the MX/PTR target, the SPF include used while a tenant has
# no sending IPs of its own, the tracking CNAME target and where DMARC aggregate reports go.
SENDING_MAIL_HOST = env_str("SENDING_MAIL_HOST", default=f"mail.{BASE_DOMAIN}")
SENDING_SPF_INCLUDE = env_str("SENDING_SPF_INCLUDE", default=f"_spf.{BASE_DOMAIN}")
TRACKING_CNAME_TARGET = env_str("TRACKING_CNAME_TARGET", default=f"track.{BASE_DOMAIN}")
DMARC_REPORT_ADDRESS = env_str("DMARC_REPORT_ADDRESS", default=f"dmarc-reports@{BASE_DOMAIN}")
# Tracking (docs/tracking.md): where pixel, click and unsubscribe links point when a sending
# domain has no verified tracking host of its own, and how long a tracking token stays valid.
TRACKING_BASE_URL = env_str(
    "TRACKING_BASE_URL",
    default=(
        f"{SITE_SCHEME}://{BASE_DOMAIN}{':' + SITE_PORT if SITE_PORT else ''}"
        if DEBUG
        else f"https://{TRACKING_CNAME_TARGET}"
    ),
).rstrip("/")
TRACKING_CUSTOM_HOSTS = env_bool("TRACKING_CUSTOM_HOSTS", default=True)
# How a verified tracking host becomes a link ({host}: the tenant's host). Under DEBUG the sandbox
# DNS resolves it but a browser does not ask the sandbox: `<host>.localhost` reaches this machine
# in every major browser and curl without setup (RFC 6761 §6.3), and the tracking app answers on
# any Host (docs/tracking.md, "The sandbox").
TRACKING_CUSTOM_HOST_URL = env_str(
    "TRACKING_CUSTOM_HOST_URL",
    default=(
        f"{SITE_SCHEME}://{{host}}.localhost{':' + SITE_PORT if SITE_PORT else ''}"
        if DEBUG
        else "https://{host}"
    ),
)
TRACKING_TOKEN_MAX_AGE_DAYS = env_int("TRACKING_TOKEN_MAX_AGE_DAYS", default=365)
# The domain of List-Unsubscribe mailto addresses (unsubscribe-<token>@...); its inbound mail is
# handed to campaigns.tracking.unsubscribe.unsubscribe_by_address.
TRACKING_UNSUBSCRIBE_MAIL_DOMAIN = env_str("TRACKING_UNSUBSCRIBE_MAIL_DOMAIN", default=BASE_DOMAIN)
# Behind a reverse proxy, the header holding the client address (its last entry is used, the one
# the proxy added), e.g. X-Forwarded-For; empty: the connection's address.
TRACKING_CLIENT_IP_HEADER = env_str("TRACKING_CLIENT_IP_HEADER", default="")
# Machine opens and clicks (docs/tracking.md): an open this soon after sending, or a click this
# soon, is a proxy or a link scanner, not a person.
TRACKING_MACHINE_OPEN_SECONDS = env_int("TRACKING_MACHINE_OPEN_SECONDS", default=3)
TRACKING_MACHINE_CLICK_SECONDS = env_int("TRACKING_MACHINE_CLICK_SECONDS", default=15)
# Events moved from Redis to PostgreSQL per transaction by the tracking.flush job.
TRACKING_FLUSH_BATCH = env_int("TRACKING_FLUSH_BATCH", default=2000)

# Inbound mail (docs/inbound.md, "Reading mailboxes" and "Actions").
INBOUND_POLL_BATCH = env_int("INBOUND_POLL_BATCH", default=200)  # messages per poll run
INBOUND_POLL_INTERVAL = env_int("INBOUND_POLL_INTERVAL", default=120)  # seconds between polls
INBOUND_POLL_BACKOFF_MAX = env_int("INBOUND_POLL_BACKOFF_MAX", default=6 * 3600)  # seconds
INBOUND_POLL_WINDOW = env_int("INBOUND_POLL_WINDOW", default=1000)  # first/new-UIDVALIDITY reads
INBOUND_RAW_RETENTION_DAYS = env_int("INBOUND_RAW_RETENTION_DAYS", default=30)
INBOUND_SOFT_BOUNCE_LIMIT = env_int("INBOUND_SOFT_BOUNCE_LIMIT", default=3)
INBOUND_SOFT_BOUNCE_DAYS = env_int("INBOUND_SOFT_BOUNCE_DAYS", default=7)
# A campaign with delay_on_out_of_office: the next step waits for the auto-reply's return date,
# at most this many days ahead (docs/inbound.md, "Actions").
INBOUND_OOO_MAX_DELAY_DAYS = env_int("INBOUND_OOO_MAX_DELAY_DAYS", default=30)
# Automatic protection (docs/inbound.md, "Automatic protection"): rates in basis points
# (1/100 of a percent: 300 = 3 %), judged once a mailbox, domain or campaign has at least
# PROTECTION_MIN_SENDS sends in its last PROTECTION_WINDOW_DAYS days.
PROTECTION_MIN_SENDS = env_int("PROTECTION_MIN_SENDS", default=100)
PROTECTION_WINDOW_DAYS = env_int("PROTECTION_WINDOW_DAYS", default=30)
PROTECTION_BOUNCE_FLAG_BP = env_int("PROTECTION_BOUNCE_FLAG_BP", default=300)
PROTECTION_BOUNCE_PAUSE_BP = env_int("PROTECTION_BOUNCE_PAUSE_BP", default=500)
PROTECTION_COMPLAINT_FLAG_BP = env_int("PROTECTION_COMPLAINT_FLAG_BP", default=10)
PROTECTION_COMPLAINT_PAUSE_BP = env_int("PROTECTION_COMPLAINT_PAUSE_BP", default=30)
# The platform-wide staff alert (seed: "bounce rate > 15 %"), over today and yesterday.
PROTECTION_PLATFORM_BOUNCE_ALERT_BP = env_int("PROTECTION_PLATFORM_BOUNCE_ALERT_BP", default=1500)
PROTECTION_PLATFORM_MIN_SENDS = env_int("PROTECTION_PLATFORM_MIN_SENDS", default=1000)
# The sandbox DNS server (`make run`): loopback only; zones in a JSON file the local provider
# writes and the server re-reads.
SANDBOX_DNS_HOST = env_str("SANDBOX_DNS_HOST", default="127.0.0.1")
SANDBOX_DNS_PORT = env_int("SANDBOX_DNS_PORT", default=5353)
SANDBOX_DNS_ZONES = Path(
    env_str("SANDBOX_DNS_ZONES", default=str(BASE_DIR / ".local" / "sandbox-dns.json"))
)
# What the sandbox SMTP server's recipients do (bounce, defer, reject, complain, reply, ooo):
# a JSON file beside the zones, written by `manage.py sandbox rule`, reread by the server.
SANDBOX_RULES = Path(
    env_str("SANDBOX_RULES", default=str(BASE_DIR / ".local" / "sandbox-rules.json"))
)
if DEBUG and not DNS_RESOLVERS:
    # `make run`: verification asks the sandbox DNS server the local provider publishes to.
    DNS_RESOLVERS = [f"{SANDBOX_DNS_HOST}:{SANDBOX_DNS_PORT}"]
# --- DNS blocklists (docs/reputation.md, "Blocklists") ---------------------------------------
# The resolver blocklist queries go to, host:port (empty: the system's). Spamhaus refuses
# queries through public resolvers (answer 127.255.255.254): use your own recursive resolver.
DNSBL_RESOLVER = env_str("DNSBL_RESOLVER", default="")
DNSBL_TIMEOUT = float(env_int("DNSBL_TIMEOUT", default=2))
DNSBL_WINDOW = env_int("DNSBL_WINDOW", default=8)  # queries in flight at once
BLOCKLIST_CHECK_HOURS = env_int("BLOCKLIST_CHECK_HOURS", default=24)
BLOCKLIST_LISTED_RECHECK_HOURS = env_int("BLOCKLIST_LISTED_RECHECK_HOURS", default=4)
BLOCKLIST_RETRY_MINUTES = env_int("BLOCKLIST_RETRY_MINUTES", default=30)
BLOCKLIST_STAFF_EMAILS = env_list("BLOCKLIST_STAFF_EMAILS", default=[])
if DEBUG and not DNSBL_RESOLVER:
    DNSBL_RESOLVER = f"{SANDBOX_DNS_HOST}:{SANDBOX_DNS_PORT}"
# The sandbox IMAP server (`manage.py sandbox imap`, docs/sandbox.md): a private Dovecot on
# loopback, its configuration, users and Maildirs under SANDBOX_IMAP_DIR.
SANDBOX_IMAP_HOST = env_str("SANDBOX_IMAP_HOST", default="127.0.0.1")
SANDBOX_IMAP_PORT = env_int("SANDBOX_IMAP_PORT", default=1143)
SANDBOX_IMAP_DIR = Path(env_str("SANDBOX_IMAP_DIR", default=str(BASE_DIR / ".local" / "dovecot")))
# Warm-up mail the sandbox SMTP server files in Junk (penguinmails/sandbox/junk.py): percent on
# the sending pool member's first day, falling in a line to LAST percent on day DAYS and after.
SANDBOX_WARMUP_JUNK_FIRST = env_int("SANDBOX_WARMUP_JUNK_FIRST", default=40)
SANDBOX_WARMUP_JUNK_LAST = env_int("SANDBOX_WARMUP_JUNK_LAST", default=5)
SANDBOX_WARMUP_JUNK_DAYS = env_int("SANDBOX_WARMUP_JUNK_DAYS", default=30)
# Warm-up, receiving side (docs/warmup.md): warm-up messages are deleted from the receiving
# mailbox after this many days; this percent of those received are marked important (flagged).
WARMUP_CLEANUP_DAYS = env_int("WARMUP_CLEANUP_DAYS", default=7)
WARMUP_IMPORTANT_PERCENT = env_int("WARMUP_IMPORTANT_PERCENT", default=10)

# --- Outbound connection guard (penguinmails/netguard.py, docs/mailboxes.md) -----------------
# User-given servers must have public addresses and these ports. Loopback is let through (on any
# port but NETGUARD_LOOPBACK_DENIED_PORTS) only for the sandbox servers of `make run` and tests;
# private, link-local and metadata addresses are refused even then. Never true in production.
NETGUARD_ALLOW_LOOPBACK = env_bool("NETGUARD_ALLOW_LOOPBACK", default=DEBUG)


def _env_ports(name: str, default: str) -> list[int]:
    from django.core.exceptions import ImproperlyConfigured

    values = env_list(name, default=default.split(","))
    if not all(v.isdigit() and 0 < int(v) < 65536 for v in values):
        raise ImproperlyConfigured(f"Environment variable {name} must list port numbers.")
    return [int(v) for v in values]


NETGUARD_SMTP_PORTS = _env_ports("NETGUARD_SMTP_PORTS", "25,465,587,2525")
NETGUARD_IMAP_PORTS = _env_ports("NETGUARD_IMAP_PORTS", "143,993")
NETGUARD_LOOPBACK_DENIED_PORTS = _env_ports(
    "NETGUARD_LOOPBACK_DENIED_PORTS", "22,53,111,3306,5432,6379,11211,27017"
)

# --- Alerts (penguinmails/alerts, docs/operations.md "Alerts") --------------------------------
# A Slack-compatible incoming webhook told of each opened alert (POST {"text": ...}); empty: none.
ALERTS_WEBHOOK_URL = env_str("ALERTS_WEBHOOK_URL", default="")
# The seed's four conditions. Error rate: 5xx over all requests in the last N minutes.
ALERTS_ERROR_RATE_PERCENT = env_int("ALERTS_ERROR_RATE_PERCENT", default=5)
ALERTS_ERROR_RATE_MINUTES = env_int("ALERTS_ERROR_RATE_MINUTES", default=5)
ALERTS_ERROR_RATE_MIN_REQUESTS = env_int("ALERTS_ERROR_RATE_MIN_REQUESTS", default=1)
# Queue backlog: more than N jobs ready and waiting longer than M minutes.
ALERTS_QUEUE_BACKLOG_JOBS = env_int("ALERTS_QUEUE_BACKLOG_JOBS", default=1000)
ALERTS_QUEUE_BACKLOG_MINUTES = env_int("ALERTS_QUEUE_BACKLOG_MINUTES", default=10)
# Slow queries: statements running (or recorded by our wrapper) longer than this.
ALERTS_SLOW_QUERY_MS = env_int("ALERTS_SLOW_QUERY_MS", default=2000)
# Platform bounce rate (today and yesterday, PlatformDailyStat), counted once
# PROTECTION_PLATFORM_MIN_SENDS messages went out.
ALERTS_BOUNCE_RATE_PERCENT = env_int("ALERTS_BOUNCE_RATE_PERCENT", default=15)


# --- Outgoing webhooks (webhooks/, docs/webhooks.md) -----------------------------------------
# Seconds between a delivery's attempts: 8 attempts, the last 24 hours after the first.
def _env_delays(name: str, default: str) -> list[int]:
    from django.core.exceptions import ImproperlyConfigured

    values = env_list(name, default=default.split(","))
    if not values or not all(v.isdigit() for v in values):
        raise ImproperlyConfigured(f"Environment variable {name} must list whole seconds.")
    return [int(v) for v in values]


WEBHOOK_RETRY_DELAYS = _env_delays("WEBHOOK_RETRY_DELAYS", "5,300,1800,7200,18000,36000,23100")
# An endpoint failing without a success for this long, or this many attempts in a row, is
# disabled and its owners emailed.
WEBHOOK_DISABLE_AFTER_HOURS = env_int("WEBHOOK_DISABLE_AFTER_HOURS", default=24)
WEBHOOK_DISABLE_AFTER_FAILURES = env_int("WEBHOOK_DISABLE_AFTER_FAILURES", default=200)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", default=10)
# How long a process trusts its list of which events have endpoints (the send path asks it
# per batch); writes in the same process clear it at once.
WEBHOOK_SUBSCRIPTIONS_CACHE_SECONDS = env_int("WEBHOOK_SUBSCRIPTIONS_CACHE_SECONDS", default=30)
# Finished deliveries (and their attempts) are kept this long in the log, then deleted.
WEBHOOK_RETENTION_DAYS = env_int("WEBHOOK_RETENTION_DAYS", default=30)
# How often a process asks Redis whether the endpoints changed (another process wrote).
WEBHOOK_SUBSCRIPTIONS_CHECK_SECONDS = env_int("WEBHOOK_SUBSCRIPTIONS_CHECK_SECONDS", default=1)
# After this many failed attempts in a row, an endpoint's attempts are held (not sent) but
# for one a minute (the circuit breaker), until one succeeds.
WEBHOOK_BREAKER_FAILURES = env_int("WEBHOOK_BREAKER_FAILURES", default=10)
WEBHOOK_BREAKER_SECONDS = env_int("WEBHOOK_BREAKER_SECONDS", default=60)

# --- Backups (docs/operations.md, "Backups and migrations") ----------------------------------
# Where encrypted dumps go: "dir" (BACKUP_DIR) or "s3" (any S3-compatible storage, BACKUP_S3_*).
BACKUP_STORAGE = env_str("BACKUP_STORAGE", default="dir").strip().lower()
BACKUP_DIR = Path(env_str("BACKUP_DIR", default=str(BASE_DIR / ".local" / "backups")))
# Where a restore or verify decrypts a dump to (empty: the system's temporary folder).
BACKUP_WORK_DIR = env_str("BACKUP_WORK_DIR", default="")
BACKUP_S3_BUCKET = env_str("BACKUP_S3_BUCKET", default="")
BACKUP_S3_PREFIX = env_str("BACKUP_S3_PREFIX", default="backups")
BACKUP_S3_ENDPOINT_URL = env_str("BACKUP_S3_ENDPOINT_URL", default="")  # empty: AWS itself
BACKUP_S3_REGION = env_str("BACKUP_S3_REGION", default="")
BACKUP_S3_ACCESS_KEY_ID = env_str("BACKUP_S3_ACCESS_KEY_ID", default="")
BACKUP_S3_SECRET_ACCESS_KEY = env_str("BACKUP_S3_SECRET_ACCESS_KEY", default="")
# A Fernet-format key (32 url-safe base64 bytes) for backups; empty: the first of
# FIELD_ENCRYPTION_KEYS. Every key listed in either can decrypt (rotation).
BACKUP_ENCRYPTION_KEY = env_str("BACKUP_ENCRYPTION_KEY", default="")
BACKUP_PG_BIN_DIR = env_str("BACKUP_PG_BIN_DIR", default="")  # pg_dump & co (empty: PATH)
BACKUP_HOUR = env_int("BACKUP_HOUR", default=3)  # UTC hour of the daily backup (beat)
BACKUP_KEEP_DAILY = env_int("BACKUP_KEEP_DAILY", default=7)
BACKUP_KEEP_WEEKLY = env_int("BACKUP_KEEP_WEEKLY", default=4)
BACKUP_KEEP_MONTHLY = env_int("BACKUP_KEEP_MONTHLY", default=12)
# The alert `backup.missed` fires when the newest whole-database backup is older than this.
BACKUP_MAX_AGE_HOURS = env_int("BACKUP_MAX_AGE_HOURS", default=26)
