"""Strict parsing of settings from environment variables.

A value that cannot be understood is an error at start-up, never a silent default: a typo in
LIANXIN_DEBUG must not switch debug pages on in production.
"""

import os
from pathlib import Path

from lianxin.errors import LianxinError


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw in ("True", "true", "1", "yes"):
        return True
    if raw in ("False", "false", "0", "no"):
        return False
    raise LianxinError(f"{name}={raw!r} is not a boolean: use true or false")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise LianxinError(f"{name}={raw!r} is not a whole number") from None
    if value < 0:
        raise LianxinError(f"{name}={raw!r} must not be negative")
    return value


def proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """LIANXIN_PROXY_SSL_HEADER=X-Forwarded-Proto: the header (set by the TLS proxy in front,
    which must overwrite what clients send) that says a request came in over HTTPS."""
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return None
    header, _, value = raw.partition("=")
    if not header.replace("-", "").isalnum():
        raise LianxinError(f"{name}={raw!r} is not a header name (e.g. X-Forwarded-Proto)")
    return "HTTP_" + header.strip().upper().replace("-", "_"), (value.strip() or "https")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def home_dir() -> Path:
    """The data directory (LIANXIN_HOME, default ./var), created on first use."""
    home = Path(os.environ.get("LIANXIN_HOME") or "var").resolve()
    try:
        # 0700: the database, the readings and the secret key are for this account only.
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise LianxinError(f"cannot create the data directory {home}: {exc.strerror}") from exc
    return home


def secret_key(home: Path) -> str:
    """LIANXIN_SECRET_KEY, or a random key kept in the data directory for the embedded mode."""
    key = os.environ.get("LIANXIN_SECRET_KEY")
    if key:
        return key
    path = home / "secret_key"
    if not path.exists():
        import secrets

        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()
