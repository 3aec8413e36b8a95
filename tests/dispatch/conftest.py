import pytest

from tests.web.helpers import case  # noqa: F401  (the view tests' shared fixture)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The demo town creates seven users; real PBKDF2 would cost seconds per test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
