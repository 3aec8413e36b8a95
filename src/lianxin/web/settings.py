"""Django settings for Lianxin, read from the environment with safe defaults for the embedded mode.

Embedded (default): SQLite in $LIANXIN_HOME (./var), DEBUG off, bound to localhost.
Production: set DATABASE_URL (PostgreSQL), LIANXIN_SECRET_KEY and LIANXIN_ALLOWED_HOSTS.
"""

import os
from pathlib import Path

import dj_database_url
from csp.constants import NONCE

from lianxin.meterdata import deployment_zone
from lianxin.web.config import (
    env_bool,
    env_int,
    env_list,
    env_str,
    home_dir,
    proxy_ssl_header,
    secret_key,
)

# Files this process creates (SQLite database, readings store, quarantine, exports) are for
# its own account only: 0600 files, 0700 folders.
os.umask(0o077)

PACKAGE_DIR = Path(__file__).resolve().parent.parent
# In a source checkout node_modules sits at the repository root, next to package.json.
NODE_MODULES = Path(
    os.environ.get("LIANXIN_NODE_MODULES") or PACKAGE_DIR.parent.parent / "node_modules"
)

LIANXIN_HOME = home_dir()
SECRET_KEY = secret_key(LIANXIN_HOME)
DEBUG = env_bool("LIANXIN_DEBUG", False)
ALLOWED_HOSTS = env_list("LIANXIN_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("LIANXIN_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "lianxin.care",
    "lianxin.alerts",
    "lianxin.dispatch",
    "lianxin.ingest",
    "lianxin.ingest.api",
    "lianxin.ledgers",
    "lianxin.health",
    "lianxin.notify",
    "lianxin.datahealth",
    "lianxin.wall",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "lianxin.web.security.NoStoreMiddleware",
    # A wall-screen session reads only (403 on POSTs) and keeps its long session alive.
    "lianxin.wall.session.WallReadOnlyMiddleware",
    # Last, as django-axes requires: it answers a locked-out login.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "lianxin.web.urls"
WSGI_APPLICATION = "lianxin.web.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PACKAGE_DIR / "web" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "lianxin.health.context.system_alerts",
            ],
        },
    },
]

_default_db = f"sqlite:///{LIANXIN_HOME / 'lianxin.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", _default_db) or _default_db, conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while the monitor writes; IMMEDIATE avoids
    # "database is locked" on upgrade from a read to a write transaction.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        # Past this, the push API answers 503 (retry), never an HTML 500.
        "timeout": env_int("LIANXIN_SQLITE_TIMEOUT", 20),
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # First, so a locked-out address and user is refused before the password is checked.
    "lianxin.web.security.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = deployment_zone()  # LIANXIN_TIME_ZONE, read in lianxin.meterdata
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = LIANXIN_HOME / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [
    # lianxin.web is not an app, so its static folder is listed here (lianxin.css, the scripts).
    PACKAGE_DIR / "web" / "static",
    ("vendor/echarts", NODE_MODULES / "echarts" / "dist"),
]
# Serve straight from the finders: the embedded mode has no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"no_403_traceback": {"()": "lianxin.web.logs.RefusalWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["no_403_traceback"]}},
    "root": {"handlers": ["console"], "level": env_str("LIANXIN_LOG_LEVEL", "WARNING")},
}

# ---- production hardening (see README "Production") ------------------------------------------
# Behind HTTPS set LIANXIN_HTTPS=true: Secure cookies, HSTS and the redirect to https follow,
# each of which can also be set on its own. LIANXIN_PROXY_SSL_HEADER names the header the TLS
# proxy sets (X-Forwarded-Proto), so Django knows a request came in over HTTPS.
HTTPS = env_bool("LIANXIN_HTTPS", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("LIANXIN_SECURE_COOKIES", HTTPS)
SECURE_SSL_REDIRECT = env_bool("LIANXIN_SSL_REDIRECT", HTTPS)
# Load balancers probe over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("LIANXIN_HSTS_SECONDS", 31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("LIANXIN_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
SECURE_HSTS_PRELOAD = env_bool("LIANXIN_HSTS_PRELOAD", HTTPS)
SECURE_PROXY_SSL_HEADER = proxy_ssl_header("LIANXIN_PROXY_SSL_HEADER")
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# A duty shift, not 14 days: a shared duty-room PC must not stay signed in for a week.
SESSION_COOKIE_AGE = env_int("LIANXIN_SESSION_HOURS", 12) * 3600
SESSION_COOKIE_SAMESITE = "Lax"
# The wall role's session (the duty room's big display) lasts this long from its last day of use.
WALL_SESSION_AGE = env_int("LIANXIN_WALL_SESSION_DAYS", 30) * 86400

# Content-Security-Policy (django-csp): scripts only from this site (the one inline script
# carries the per-request nonce); ECharts sets inline styles, hence 'unsafe-inline' for styles.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", NONCE],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Login throttling (django-axes): after LIANXIN_LOGIN_FAILURES wrong passwords for one user
# from one address, that pair is refused for LIANXIN_LOCKOUT_MINUTES. Per pair, not per user:
# a stranger must not be able to lock the duty room's operators out.
AXES_FAILURE_LIMIT = env_int("LIANXIN_LOGIN_FAILURES", 5)
AXES_COOLOFF_TIME = env_int("LIANXIN_LOCKOUT_MINUTES", 15) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_PROXY_COUNT = env_int("LIANXIN_PROXY_COUNT", 0) or None

# The queue sounds and flashes for new alerts of these kinds, per severity (lianxin.alerts.cue).
from lianxin.alerts.cue import DEFAULT as _CUE_DEFAULT  # noqa: E402
from lianxin.alerts.cue import parse as _parse_cue  # noqa: E402

LIANXIN_CUE = _parse_cue(env_str("LIANXIN_CUE", _CUE_DEFAULT))
# A case closed while its condition persists is raised again when the meter still shows it
# this many minutes later.
LIANXIN_RERAISE_AFTER_MINUTES = env_int("LIANXIN_RERAISE_AFTER_MINUTES", 60)
