"""Parkgate settings: one module, configured from the environment (12-factor).

With no DATABASE_URL / REDIS_URL, Parkgate runs on an embedded default (its own PostgreSQL cluster under var/, an
in-memory channel layer, jobs in-process) so that a first run needs nothing but Python. docs/operations.md section 2
is the contract.
"""

import ipaddress
import os
from datetime import timedelta
from pathlib import Path

import environ
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="") or (
    "insecure-dev-key-only-used-with-debug-on-0123456789abcdefghijklmnop" if DEBUG else ""
)
if not SECRET_KEY:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off (set DEBUG=1 for local development).")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", ".parkgate.test"])

INSTALLED_APPS = [
    # wiring: the `serve`, `runserver` (= serve) and `worker` commands; first, so that its runserver is the one.
    # daphne is no app here: its app only replaces runserver, and importing Twisted made every command 2 s slower.
    "project",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",  # staff login lock-outs; its attempts and logs in the admin
    "django_otp",  # staff two-factor sign-in (apps.staff.twofactor)
    "django_otp.plugins.otp_totp",
    "anymail",  # outgoing mail through a provider's API (EMAIL_PROVIDER) and its tracking webhooks (bounces)
    "channels",
    "ninja",  # serves the API docs' Swagger UI from its own static files (no CDN)
    "apps.core",
    "apps.carparks",
    "apps.agents",
    "apps.products",
    "apps.bookings",
    "apps.access",
    "apps.mail",
    "apps.accounting",
    "apps.payments",
    "apps.staff",
    "apps.insight",
    "apps.ground",
    "apps.customers",  # messages to customers, subject access and erasure, retention
    "apps.webhooks",  # outbound webhooks to agents and the operator (Standard Webhooks)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "apps.staff.twofactor.SecondFactorMiddleware",  # supervisors, accountants, superusers: a TOTP code too
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks: turns a lock-out into its 429 page
]

ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "project" / "templates"],
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

# --- Database -------------------------------------------------------------------------------------------------
# PostgreSQL through psycopg 3 with its connection pool. Under ASGI every sync_to_async call closes "old"
# connections, so persistent connections must stay off (CONN_MAX_AGE=0): the pool makes reconnecting cheap.
# With no DATABASE_URL, the embedded default: a PostgreSQL cluster of the project's own (project/embedded.py).
DATABASE_URL = env.str("DATABASE_URL", default="")
if not DATABASE_URL:
    from project.embedded import database_url

    DATABASE_URL = database_url(Path(env.str("EMBEDDED_POSTGRES_DIR", default=str(VAR_DIR / "postgres"))))
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("Parkgate runs on PostgreSQL only: DATABASE_URL must be postgres://...")
_db = DATABASES["default"]
if "host" in _db.get("OPTIONS", {}):  # a Unix socket's directory given as ?host=/path (the embedded cluster's URL)
    _db["HOST"] = _db["OPTIONS"].pop("host")
_db["CONN_MAX_AGE"] = 0
_db["ATOMIC_REQUESTS"] = False  # async views: a request is not one transaction; services own theirs.
_db.setdefault("OPTIONS", {})["pool"] = {
    "min_size": env.int("DB_POOL_MIN", default=2),
    "max_size": env.int("DB_POOL_MAX", default=20),
    "timeout": env.float("DB_POOL_TIMEOUT", default=5.0),
}
_db["OPTIONS"].setdefault("connect_timeout", 3)
# Only the hot paths' hand-written statements are prepared (apps.core.sql); their plans do not depend on the
# values, so plan them once per connection instead of again on every run (PostgreSQL's default would keep
# re-planning the decision's many-branch look-up). Django's own queries are never prepared: unaffected.
_db["OPTIONS"]["options"] = " ".join(
    filter(None, [_db["OPTIONS"].get("options"), "-c plan_cache_mode=force_generic_plan"])
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, job queue, shared cache -------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "capacity": 1000, "expiry": 30},
        }
    }
    CACHES = {"default": {"BACKEND": "apps.core.cache.RedisCache", "LOCATION": REDIS_URL}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Jobs: arq workers when Redis is configured, else run inside the `serve` process (see apps.core.jobs).
PARKGATE_JOBS_BACKEND = "arq" if REDIS_URL else "inprocess"
ARQ_QUEUE_NAME = env.str("ARQ_QUEUE_NAME", default="parkgate:queue")

# --- Parkgate --------------------------------------------------------------------------------------------------
SMTP_MAX_MESSAGE_BYTES = env.int("SMTP_MAX_MESSAGE_BYTES", default=10 * 1024 * 1024)
SMTP_MAX_SESSIONS = env.int("SMTP_MAX_SESSIONS", default=100)
SMTP_TLS_CERT = env.str("SMTP_TLS_CERT", default="")
SMTP_TLS_KEY = env.str("SMTP_TLS_KEY", default="")
SMTP_HOSTNAME = env.str("SMTP_HOSTNAME", default="bookings.parkgate.test")
# SMTP AUTH failures allowed per login and per client address within the window (counted in the shared cache);
# past either, AUTH answers 454 until the window, counted from the first failure, has passed.
SMTP_AUTH_FAILURES_PER_LOGIN = env.int("SMTP_AUTH_FAILURES_PER_LOGIN", default=5)
SMTP_AUTH_FAILURES_PER_CLIENT = env.int("SMTP_AUTH_FAILURES_PER_CLIENT", default=20)
SMTP_AUTH_THROTTLE_WINDOW_S = env.int("SMTP_AUTH_THROTTLE_WINDOW_S", default=900)
RAW_EMAIL_RETENTION_DAYS = env.int("RAW_EMAIL_RETENTION_DAYS", default=90)
# Flight-status feed (docs/flight-status.md): flights nobody booked (yet) are forgotten this long after their date.
FLIGHT_STATUS_KEEP_DAYS = env.int("FLIGHT_STATUS_KEEP_DAYS", default=3)
API_RATE_LIMIT_PER_MINUTE = env.int("API_RATE_LIMIT_PER_MINUTE", default=600)  # agents' REST API, per token
# Outbound webhooks (docs/webhooks.md): endpoints on private or loopback addresses only with WEBHOOKS_ALLOW_PRIVATE.
WEBHOOKS_ALLOW_PRIVATE = env.bool("WEBHOOKS_ALLOW_PRIVATE", default=False)
WEBHOOKS_TIMEOUT_S = env.float("WEBHOOKS_TIMEOUT_S", default=10.0)
WEBHOOKS_ENDPOINT_CONCURRENCY = env.int("WEBHOOKS_ENDPOINT_CONCURRENCY", default=4)
WEBHOOKS_RETRY_BASE_S = env.float("WEBHOOKS_RETRY_BASE_S", default=5.0)
WEBHOOKS_RETRY_FOR_S = env.int("WEBHOOKS_RETRY_FOR_S", default=24 * 3600)
WEBHOOKS_ROTATION_GRACE_S = env.int("WEBHOOKS_ROTATION_GRACE_S", default=24 * 3600)
# Plate-read decisions run on DECISION_THREADS threads per `serve`, each holding one of the pool's connections
# (apps.access.decision); reads that wait for a thread are decided together in one transaction. Few threads with big
# batches decide the most: each more backend competes for the same CPUs and splits the batches (a machine with more
# cores may want more; docs/performance.md).
DECISION_THREADS = env.int("DECISION_THREADS", default=4)
# Staff dashboards: events are coalesced per process and flushed to each socket at most every DASHBOARD_FLUSH_S;
# DASHBOARD_FANOUT=direct sends every event to every socket instead (the benchmark's baseline, not for production).
DASHBOARD_FLUSH_S = env.float("DASHBOARD_FLUSH_S", default=0.25)
DASHBOARD_FANOUT = env.str("DASHBOARD_FANOUT", default="coalesced")
# Origins (host patterns as in ALLOWED_HOSTS, or scheme://host:port) whose pages may open the staff dashboard's socket.
# Not ALLOWED_HOSTS: those include every brand domain, and a customers' page there must not reach staff sockets with
# a staff member's cookies. The default is where staff use a local or demo server; production names its staff host.
STAFF_ORIGINS = env.list("STAFF_ORIGINS", default=["localhost", "127.0.0.1", "[::1]"])
# WebSocket routes a `serve` process accepts (others: 403): `device` (/ws/device/), `dashboard` (/ws/dashboard/).
# Separate processes for each keep dashboards' fan-out off the lanes' CPU (docs/architecture.md, Deployment).
SERVE_WEBSOCKETS = env.list("SERVE_WEBSOCKETS", default=["device", "dashboard"])
if not SERVE_WEBSOCKETS or set(SERVE_WEBSOCKETS) - {"device", "dashboard"}:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"SERVE_WEBSOCKETS takes device and/or dashboard, not {SERVE_WEBSOCKETS}")
DEMO_STAFF_USERNAME = "demo"
# GET /metrics (Prometheus text format) answers only `Authorization: Bearer METRICS_TOKEN`; unset, it is a 404.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# prometheus-client's multi-process mode: every process of a host writes its samples here and a scrape of any one
# adds them up. It must be set before prometheus_client is imported, and child processes inherit it.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "metrics"))
Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

# The seller on agents' invoices and credit notes (VAT invoices): name, postal address (one part a line) and VAT
# registration number. Rates are data, not settings: VatRate periods in the admin (apps/accounting/README.md, VAT).
VAT_SELLER_NAME = env.str("VAT_SELLER_NAME", default="Parkgate")
VAT_SELLER_ADDRESS = env.str("VAT_SELLER_ADDRESS", default="")
VAT_NUMBER = env.str("VAT_NUMBER", default="")
# --- Card payments (apps.payments, docs/payments.md) -----------------------------------------------------------
# With no STRIPE_SECRET_KEY the `demo` provider takes Stripe's place: no card is charged. STRIPE_API_BASE and
# STRIPE_JS_URL point the library and the pay page at another server (localstripe in tests and the benchmark).
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")
STRIPE_JS_URL = env.str("STRIPE_JS_URL", default="https://js.stripe.com/v3/")
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=2)  # the library's, same idempotency key

# --- Outgoing mail ---------------------------------------------------------------------------------------------
# EMAIL_URL (smtp://user:password@host:587/?tls=True, consolemail://, ...) -> Django 6.1's MAILERS.
_mail = env.email_url("EMAIL_URL", default="consolemail://")
_mail_options = {
    "host": _mail.get("EMAIL_HOST"),
    "port": _mail.get("EMAIL_PORT"),
    "username": _mail.get("EMAIL_HOST_USER"),
    "password": _mail.get("EMAIL_HOST_PASSWORD"),
    "use_tls": _mail.get("EMAIL_USE_TLS"),
    "use_ssl": _mail.get("EMAIL_USE_SSL"),
}
MAILERS = {
    "default": {
        "BACKEND": _mail["EMAIL_BACKEND"],
        "OPTIONS": {k: v for k, v in _mail_options.items() if v}
        if _mail["EMAIL_BACKEND"].endswith("smtp.EmailBackend")
        else {},
    }
}
# Or a provider's HTTP API through django-anymail: EMAIL_PROVIDER=postmark|mailgun|sendgrid|amazon_ses|brevo|...
# (anymail.backends.<provider>) with its credentials in ANYMAIL, e.g. '{"POSTMARK_SERVER_TOKEN": "..."}'.
# Bounces and complaints come back on the provider's tracking webhook, /anymail/<provider>/tracking/, mounted only
# with ANYMAIL_WEBHOOK_SECRET ("user:password", the HTTP basic auth the provider is given). EMAIL_TRACKING_PROVIDER
# names the provider whose webhook to mount when mail leaves by its SMTP relay instead (EMAIL_URL smtp://).
EMAIL_PROVIDER = env.str("EMAIL_PROVIDER", default="")
ANYMAIL = env.json("ANYMAIL", default={})
if env.str("ANYMAIL_WEBHOOK_SECRET", default=""):
    ANYMAIL["WEBHOOK_SECRET"] = env.str("ANYMAIL_WEBHOOK_SECRET")
EMAIL_TRACKING_PROVIDER = env.str("EMAIL_TRACKING_PROVIDER", default=EMAIL_PROVIDER)
if EMAIL_PROVIDER:
    MAILERS["default"] = {"BACKEND": f"anymail.backends.{EMAIL_PROVIDER}.EmailBackend", "OPTIONS": {}}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Parkgate <no-reply@parkgate.test>")

# --- Auth, i18n, static ----------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [  # Django's full set: create_staff and the admin's forms run them
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes (first backend): AXES_FAILURE_LIMIT wrong passwords lock the account, and separately the client address
# (REMOTE_ADDR: the client's behind TRUSTED_PROXIES), for AXES_COOLOFF_TIME or until a supervisor unlocks it
# (/dashboard/lockouts, apps.staff.services.login_lockout_clear). A successful login clears its own failures.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(hours=1)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True  # every failure, with address and user agent, in the admin
AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)  # never a header: asgi.py has set it from TRUSTED_PROXIES
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/dashboard/"
LANGUAGE_CODE = "en-gb"
# What a brand's site and messages may be in (Brand.language): English, and one catalogue per other language under
# locale/ (its .mo compiled by `manage.py compilemessages` and committed: serving needs no gettext tools).
LANGUAGES = [("en-gb", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing root on every request otherwise
# Uploaded files (condition photos, apps.ground): local files under var/media in the demo; in production any storage
# class, e.g. MEDIA_STORAGE=storages.backends.s3.S3Storage with MEDIA_STORAGE_OPTIONS='{"bucket_name": "...",
# "endpoint_url": "https://..."}' for an S3-compatible store (docs/operations.md 2).
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
STORAGES = {
    "default": {
        "BACKEND": env.str("MEDIA_STORAGE", default="django.core.files.storage.FileSystemStorage"),
        "OPTIONS": env.json("MEDIA_STORAGE_OPTIONS", default={}),
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True  # daphne serves static files itself; no collectstatic step needed.
WHITENOISE_ROOT = BASE_DIR / "project" / "root"  # files browsers ask for at the root: /favicon.ico

# --- Security --------------------------------------------------------------------------------------------------
# HTTPS is assumed in production (DEBUG off); PARKGATE_HTTPS=0 serves plain HTTP (tests, private links).
HTTPS = env.bool("PARKGATE_HTTPS", default=not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = 31_536_000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy on every response (Django's middleware): scripts only from our own origin (every page's are
# static files, none inline), no plugins, no framing, forms and connections (the dashboard's WebSocket) to our origin.
# Styles may be inline: the pages carry small <style> blocks and attributes, which run no code.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# The load balancers (CIDRs) whose X-Forwarded-For names the client (asgi.py); from any other peer the header is
# ignored. Empty: trust none. Rate limits and login lock-outs key on this address (REMOTE_ADDR).
try:
    TRUSTED_PROXIES = [str(ipaddress.ip_network(n.strip())) for n in env.list("TRUSTED_PROXIES", default=[])]
except ValueError as exc:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"TRUSTED_PROXIES takes CIDRs such as 10.0.0.0/8: {exc}") from None

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Escapes control characters from clients (firmware, subjects, plates) so that they cannot forge log lines.
    "formatters": {
        "plain": {
            "class": "project.logformat.EscapingFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "mail.log": {"level": "WARNING"},  # aiosmtpd's per-command chatter
        "embedded_postgres": {"level": "WARNING"},  # every pg_ctl it runs
        "axes": {"level": "WARNING"},  # django-axes' per-attempt chatter; lock-outs are warnings
    },
}

# --- Messages to customers (apps.customers) ---------------------------------------------------------------------
# Text messages: `console` (logged) or `http` (a provider's JSON API, apps/customers/sms.py); docs/operations.md.
SMS_BACKEND = env.str("SMS_BACKEND", default="console")
SMS_HTTP_URL = env.str("SMS_HTTP_URL", default="")
SMS_HTTP_TOKEN = env.str("SMS_HTTP_TOKEN", default="")
SMS_SENDER = env.str("SMS_SENDER", default="Parkgate")
# A failed send is tried again by the sweep after 1, 2, 4 ... minutes, this many times in all.
CUSTOMER_MESSAGE_ATTEMPTS = env.int("CUSTOMER_MESSAGE_ATTEMPTS", default=6)
# Staff two-factor sign-in (apps.staff.twofactor): supervisors, accountants and superusers give a TOTP code after
# their password; `check --deploy` fails while it is off or one of them has no authenticator set up. Off by default
# only with DEBUG (the demo's `demo`/`demo` sign-in stays one step).
STAFF_TWO_FACTOR = env.bool("STAFF_TWO_FACTOR", default=not DEBUG)
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Parkgate")
