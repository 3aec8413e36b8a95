from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from lianxin.care.models import CareRecipient, Consent, Household, Meter, TransformerArea

pytestmark = pytest.mark.django_db


@pytest.fixture
def home():
    ta = TransformerArea.objects.create(code="TA1", name="三苏路1号台区")
    return Household.objects.create(code="H1", address="东坡区三苏路1号", transformer_area=ta)


@pytest.fixture
def recipient(home):
    return CareRecipient.objects.create(name="杜德明", birth_year=1935, household=home)


def test_meter_number_is_unique(home):
    Meter.objects.create(
        number="3330001000000011234567", account_number="3100000001", household=home
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Meter.objects.create(
            number="3330001000000011234567", account_number="3100000002", household=home
        )


def test_meter_kind_and_interval_are_checked_by_the_database(home):
    with pytest.raises(IntegrityError), transaction.atomic():
        Meter.objects.create(number="M1", account_number="A1", household=home, interval_minutes=7)
    with pytest.raises(IntegrityError), transaction.atomic():
        Meter.objects.create(number="M2", account_number="A2", household=home, kind="steam")


def test_withdrawing_consent_is_recorded_not_deleted(recipient):
    consent = Consent.objects.create(
        care_recipient=recipient,
        scope=Consent.Scope.MONITORING,
        given_at=timezone.now() - timedelta(days=30),
        given_by="本人",
    )
    assert recipient.has_consent

    consent.withdraw(by="女儿 杜丽", note="搬去女儿家住")

    consent.refresh_from_db()
    assert consent.withdrawn_at is not None and consent.withdrawn_by == "女儿 杜丽"
    assert Consent.objects.filter(pk=consent.pk).exists()
    assert not recipient.has_consent
    with pytest.raises(ValidationError):
        consent.withdraw(by="again")
    with pytest.raises(ValidationError):
        consent.delete()
    assert Consent.objects.filter(pk=consent.pk).exists()


def test_consent_can_be_given_again_after_withdrawal_but_only_one_open(recipient):
    given = timezone.now() - timedelta(days=10)
    first = Consent.objects.create(
        care_recipient=recipient, scope="monitoring", given_at=given, given_by="本人"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Consent.objects.create(
            care_recipient=recipient, scope="monitoring", given_at=given, given_by="本人"
        )
    first.withdraw(by="本人")
    Consent.objects.create(
        care_recipient=recipient, scope="monitoring", given_at=timezone.now(), given_by="本人"
    )
    assert recipient.consents.count() == 2
    assert recipient.active_consents().count() == 1


def test_consent_cannot_be_withdrawn_before_it_was_given(recipient):
    now = timezone.now()
    with pytest.raises(IntegrityError), transaction.atomic():
        Consent.objects.create(
            care_recipient=recipient,
            scope="monitoring",
            given_at=now,
            given_by="本人",
            withdrawn_at=now - timedelta(hours=1),
        )


def test_a_care_recipient_protects_their_consent_history(recipient):
    Consent.objects.create(
        care_recipient=recipient, scope="monitoring", given_at=timezone.now(), given_by="本人"
    )
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError):
        recipient.delete()


def test_quiet_hours_need_both_ends(home):
    from datetime import time

    with pytest.raises(IntegrityError), transaction.atomic():
        CareRecipient.objects.create(
            name="王秀英", birth_year=1940, household=home, quiet_hours_start=time(13)
        )


def test_phone_numbers_are_validated(recipient):
    recipient.phone = "call me maybe"
    with pytest.raises(ValidationError) as err:
        recipient.full_clean()
    assert "phone" in err.value.message_dict
