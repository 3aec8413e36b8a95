import pytest
from django.contrib.auth import get_user_model

from lianxin.care.models import (
    CareRecipient,
    Consent,
    EmergencyContact,
    Household,
    Meter,
    TransformerArea,
)
from lianxin.care.roles import Role
from lianxin.care.seed import DEMO_PASSWORD, seed_demo_town
from lianxin.errors import LianxinError

pytestmark = pytest.mark.django_db


def snapshot():
    """Everything a person would see of the town, without database ids."""
    return {
        "areas": list(TransformerArea.objects.values_list("code", "name", "feeder__code")),
        "homes": list(
            Household.objects.values_list(
                "code", "address", "address_en", "transformer_area__code", "latitude", "longitude"
            )
        ),
        "meters": list(
            Meter.objects.values_list(
                "number", "account_number", "household__code", "kind", "prepaid"
            )
        ),
        "people": list(
            CareRecipient.objects.order_by("household__code").values_list(
                "name",
                "name_en",
                "birth_year",
                "phone",
                "household__code",
                "sensitivity",
                "usual_wake_time",
            )
        ),
        "contacts": list(
            EmergencyContact.objects.order_by(
                "care_recipient__household__code", "priority"
            ).values_list("care_recipient__name", "name", "relation", "phone", "priority")
        ),
    }


def reseed(seed):
    for model in (EmergencyContact, Consent, CareRecipient, Meter, Household):
        model.objects.all().delete()
    TransformerArea.objects.all().delete()
    from lianxin.care.models import Feeder, Team

    Team.objects.all().delete()
    Feeder.objects.all().delete()
    get_user_model().objects.all().delete()
    seed_demo_town(seed=seed)
    return snapshot()


def test_demo_town_has_the_promised_size():
    summary = seed_demo_town(seed=7)
    assert summary.households >= 200 and Household.objects.count() == summary.households
    assert summary.transformer_areas >= 8
    assert CareRecipient.objects.count() >= 32
    # Every care recipient has consent on record and someone to call.
    for person in CareRecipient.objects.all():
        assert person.has_consent
        assert person.contacts.exists()
    assert Household.objects.filter(address__contains="眉山市东坡区").count() == summary.households
    assert CareRecipient.objects.filter(name="杜德明", birth_year=1935).exists()


def test_same_seed_same_town_other_seed_other_town():
    first = reseed(11)
    assert reseed(11) == first
    assert reseed(12) != first


def test_demo_users_can_sign_in_with_their_roles(client):
    seed_demo_town(seed=1)
    User = get_user_model()
    for username, role in [
        ("admin", Role.ADMIN),
        ("lead", Role.TEAM_LEAD),
        ("operator", Role.DUTY_OPERATOR),
        ("field1", Role.FIELD_MEMBER),
    ]:
        user = User.objects.get(username=username)
        assert user.groups.filter(name=role).exists()
        assert client.login(username=username, password=DEMO_PASSWORD)
    assert User.objects.get(username="field1").teams.exists()


def test_seeding_twice_is_refused():
    seed_demo_town(seed=1)
    with pytest.raises(LianxinError, match="already has households"):
        seed_demo_town(seed=1)
