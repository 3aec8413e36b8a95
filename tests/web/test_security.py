"""Production settings: `check --deploy` is clean with the documented variables, wrong
passwords are throttled, personal pages are neither cached nor open to injected scripts, and
the data directory is created for its owner only."""

import os
import stat
import subprocess
import sys
from datetime import UTC, datetime

import polars as pl
import pytest
from django.contrib.auth import get_user_model

from lianxin.store import ReadingsStore
from tests.alerts.helpers import town

pytestmark = pytest.mark.django_db

PRODUCTION = {
    "LIANXIN_SECRET_KEY": "x" * 20 + "-a-long-random-production-key-0123456789abcdefghijkl",
    "LIANXIN_ALLOWED_HOSTS": "lianxin.example.org",
    "LIANXIN_HTTPS": "true",
    "LIANXIN_PROXY_SSL_HEADER": "X-Forwarded-Proto",
}


def lianxin(tmp_path, *args, **env):
    # As a deployment runs it: no test-only variables (the browser tests set async-unsafe).
    drop = ("DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")
    base = {k: v for k, v in os.environ.items() if k not in drop}
    return subprocess.run(
        [sys.executable, "-m", "lianxin", *args],
        env={**base, "LIANXIN_HOME": str(tmp_path / "home"), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.once
def test_check_deploy_is_clean_with_the_production_variables(tmp_path):
    check = ("manage", "check", "--deploy", "--fail-level", "WARNING")
    result = lianxin(tmp_path, *check, **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
    # Without them the embedded mode says what is missing, as it should.
    bare = lianxin(tmp_path, *check)
    assert bare.returncode != 0 and "W012" in bare.stderr


@pytest.mark.once
def test_the_data_directory_database_and_store_are_for_the_owner_only(tmp_path):
    assert lianxin(tmp_path, "init").returncode == 0
    home = tmp_path / "home"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "lianxin.sqlite3").stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "secret_key").stat().st_mode) == 0o600

    os.umask(0o077)  # what settings do in every lianxin process
    store = ReadingsStore(home / "readings")

    store.write(
        pl.DataFrame(
            {
                "meter": ["M"],
                "ts": [datetime(2026, 1, 1, tzinfo=UTC)],
                "value": [1.0],
                "unit": ["kWh"],
            }
        )
    )
    [f] = (home / "readings").rglob("*.parquet")
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert stat.S_IMODE(f.parent.stat().st_mode) == 0o700


def test_wrong_passwords_lock_the_user_out_from_that_address_then_even_the_right_one_fails(client):
    town()
    user = get_user_model().objects.get(username="operator")
    user.set_password("the-right-password")
    user.save()
    for _ in range(5):
        wrong = client.post("/accounts/login/", {"username": "operator", "password": "wrong"})
        assert wrong.status_code in (200, 429)
    right = client.post(
        "/accounts/login/",
        {"username": "operator", "password": "the-right-password"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert right.status_code == 429
    assert "Too many wrong passwords" in right.content.decode()
    assert "_auth_user_id" not in client.session
    # Another address is not locked out: a stranger cannot lock the duty room out.
    other = client.post(
        "/accounts/login/",
        {"username": "operator", "password": "the-right-password"},
        REMOTE_ADDR="10.0.0.9",
    )
    assert other.status_code == 302


def test_personal_pages_are_not_cached_and_carry_a_csp(client):
    town()
    client.force_login(get_user_model().objects.get(username="operator"))
    for url in ("/alerts/", "/households/H00001/"):
        response = client.get(url)
        assert response.status_code == 200
        assert "no-store" in response["Cache-Control"]
        csp = response["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    # The queue's one inline script runs by its per-request nonce.
    queue = client.get("/alerts/")
    nonce = queue["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">' in queue.content.decode()
