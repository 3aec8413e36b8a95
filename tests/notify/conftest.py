import pytest

from tests.notify.receivers import HTTPReceiver, SMTPReceiver


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def receiver():
    with HTTPReceiver() as r:
        yield r


@pytest.fixture
def smtp():
    with SMTPReceiver() as s:
        yield s
