"""A work order's members, materials and photos: added by its team on the phone, shown on the
work-order page, refused (403) to anyone outside the team."""

from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from lianxin.dispatch.models import WorkOrder
from lianxin.ledgers.models import Attachment, OrderDetail
from tests.ledgers.records import known_records

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def rec():
    return known_records()


@pytest.fixture
def open_order(rec):
    # Team 1's open order, assigned to the field member (no ledgers permission).
    return WorkOrder.objects.create(
        source="hotline",
        household=rec.homes[0],
        request="灯不亮",
        team=rec.t1,
        assignee=rec.field,
        created_by=rec.lead,
    )


def test_a_field_member_uploads_a_photo_from_the_phone_and_sees_it(client, rec, open_order):
    assert not rec.field.has_perm("ledgers.view_ledgers")
    client.force_login(rec.field)
    page = client.get(f"/dispatch/orders/{open_order.pk}/")
    assert b'id="order-attach-form"' in page.content
    r = client.post(
        f"/ledgers/orders/{open_order.pk}/attach",
        {"file": SimpleUploadedFile("修好了.png", PNG)},
        follow=True,
    )
    [att] = Attachment.objects.filter(work_order=open_order)
    assert (att.name, att.content_type, att.uploaded_by) == ("修好了.png", "image/png", rec.field)
    assert (Path(settings.LIANXIN_HOME) / att.path).read_bytes() == PNG
    url = f"/ledgers/orders/{open_order.pk}/attachments/{att.pk}"
    assert url.encode() in r.content  # the page shows it, as an image
    got = client.get(url)
    assert got.status_code == 200 and b"".join(got.streaming_content) == PNG
    assert got["X-Content-Type-Options"] == "nosniff"


def test_a_renamed_file_is_refused_by_name_and_nothing_is_stored(client, rec, open_order):
    client.force_login(rec.field)
    r = client.post(
        f"/ledgers/orders/{open_order.pk}/attach",
        {"file": SimpleUploadedFile("photo.jpg", b"MZ\x90\x00not a photo")},
        follow=True,
    )
    assert "photo.jpg" in r.content.decode()
    assert not Attachment.objects.exists()
    assert not (Path(settings.LIANXIN_HOME) / "attachments").exists()


def test_members_and_materials_are_the_order_teams(client, rec, open_order):
    client.force_login(rec.field)
    url = f"/ledgers/orders/{open_order.pk}/record"
    client.post(url, {"members": [rec.field.pk, rec.lead.pk], "materials": "空开 1 个"})
    detail = OrderDetail.objects.get(work_order=open_order)
    assert set(detail.members.all()) == {rec.field, rec.lead}
    assert detail.materials == "空开 1 个"
    page = client.get(f"/dispatch/orders/{open_order.pk}/").content.decode()
    assert "空开 1 个" in page and "Lead" in page
    client.force_login(rec.lead)  # the desk's page of the same order shows it too
    assert "空开 1 个" in client.get(f"/dispatch/orders/{open_order.pk}/").content.decode()
    client.force_login(rec.field)
    # Someone of another team cannot be named: said, and nothing changes.
    r = client.post(url, {"members": [rec.field2.pk], "materials": "x"}, follow=True)
    assert str(rec.field2.pk) in r.content.decode()
    # A value that cannot be an id is refused by the form, not by the database.
    r = client.post(url, {"members": ["9" * 40], "materials": "x"}, follow=True)
    assert r.status_code == 200 and "9" * 40 in r.content.decode()
    detail.refresh_from_db()
    assert set(detail.members.all()) == {rec.field, rec.lead} and detail.materials == "空开 1 个"


def test_another_teams_member_gets_403_for_every_part(client, rec, open_order):
    from lianxin.ledgers.attachments import attach

    att = attach(rec.field, SimpleUploadedFile("p.png", PNG), work_order=open_order)
    client.force_login(rec.field2)
    base = f"/ledgers/orders/{open_order.pk}"
    photo = SimpleUploadedFile("p.png", PNG)
    assert client.post(f"{base}/attach", {"file": photo}).status_code == 403
    assert client.post(f"{base}/record", {"materials": "x"}).status_code == 403
    assert client.get(f"{base}/attachments/{att.pk}").status_code == 403
    assert Attachment.objects.count() == 1 and not OrderDetail.objects.exists()
    # An attachment of another order is not reached through this one.
    client.force_login(rec.lead)
    other = WorkOrder.objects.exclude(pk=open_order.pk).first()
    assert client.get(f"/ledgers/orders/{other.pk}/attachments/{att.pk}").status_code == 404
