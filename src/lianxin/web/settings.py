"""Django settings for Lianxin, read from the environment with safe defaults for the embedded mode.

Embedded (default): SQLite in $LIANXIN_HOME (./var), DEBUG off, bound to localhost.
Production: set DATABASE_URL (PostgreSQL), LIANXIN_SECRET_KEY and LIANXIN_ALLOWED_HOSTS.
"""

import os
from pathlib import Path

import dj_database_url

from lianxin.web.config import env_bool, env_list, env_str, home_dir, secret_key

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
    "lianxin.health",
    "lianxin.notify",
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
        "timeout": 20,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = env_str("LIANXIN_TIME_ZONE", "Asia/Shanghai")
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
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LIANXIN_LOG_LEVEL", "WARNING")},
}
