import pytest

from tests.web.helpers import case  # noqa: F401  (the view tests' shared fixture)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The demo town creates its users; real PBKDF2 would cost seconds per test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def own_readings_store(settings, tmp_path):
    # Balances and payments live in the store under LIANXIN_HOME.
    settings.LIANXIN_HOME = tmp_path
