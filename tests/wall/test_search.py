"""find_households: the lookup behind the directory, the header's search box and the hotline
form, by name, phone, address, account or meter number, within the user's team."""

import pytest
from django.contrib.auth import get_user_model

from lianxin.care.models import CareRecipient, EmergencyContact, Household, Team
from lianxin.care.service import find_households
from tests.alerts.helpers import town

pytestmark = pytest.mark.django_db


def user(name):
    return get_user_model().objects.get(username=name)


@pytest.fixture
def people():
    town()
    a = CareRecipient.objects.filter(team__name="连心桥服务队").select_related("household").first()
    b = CareRecipient.objects.filter(team__name="湖滨服务队").select_related("household").first()
    return a, b


def codes(qs):
    assert qs.model is Household
    return sorted(qs.values_list("code", flat=True))


def test_finds_a_resident_by_name_in_either_language_and_by_part_of_it(people):
    a, _b = people
    op = user("operator")
    assert a.household.code in codes(find_households(a.name, op))
    assert a.household.code in codes(find_households(a.name[1:], op))
    assert a.household.code in codes(find_households(a.name_en.upper(), op))


def test_finds_by_phone_typed_with_spaces_dashes_or_country_code(people):
    a, _b = people
    a.phone = "13812345678"
    a.save()
    op = user("operator")
    for typed in ("13812345678", "138 1234 5678", "138-1234-5678", "+86 138 1234 5678", "5678"):
        assert a.household.code in codes(find_households(typed, op)), typed
    contact = EmergencyContact.objects.create(
        care_recipient=a, name="女儿", relation="女儿", phone="13900001111"
    )
    assert codes(find_households(contact.phone, op)) == [a.household.code]


def test_finds_by_address_account_meter_number_and_code(people):
    a, _b = people
    home = a.household
    meter = home.meters.first()
    op = user("operator")
    assert codes(find_households(meter.number, op)) == [home.code]
    assert home.code in codes(find_households(meter.account_number, op))
    assert home.code in codes(find_households(home.code, op))
    street = home.address.split("区", 1)[1][:4]
    found = codes(find_households(street, op))
    assert home.code in found
    assert all(street in Household.objects.get(code=c).address for c in found)


def test_every_word_must_match(people):
    a, b = people
    op = user("operator")
    assert codes(find_households(f"{a.name} {a.household.code}", op)) == [a.household.code]
    assert codes(find_households(f"{a.name} {b.household.code}", op)) == []


def test_a_field_member_finds_only_their_own_teams_homes(people):
    a, b = people
    assert codes(find_households(b.name, user("field1"))) == []
    assert codes(find_households(b.name, user("field3"))) == [b.household.code]
    assert a.household.code in codes(find_households(a.name, user("field1")))


def test_blank_or_awkward_queries_find_nothing_and_never_fail(people):
    op = user("operator")
    for q in ("", "   ", None, "\x00", "%", "_", "' OR 1=1 --", "x" * 500):
        assert codes(find_households(q, op)) == []


def test_the_wall_role_sees_every_home(people):
    _a, b = people
    assert Team.objects.count() == 2
    assert codes(find_households(b.name, user("wall"))) == [b.household.code]
