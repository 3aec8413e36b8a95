"""The ledger pages, the dashboard and the exports, through Django's test client."""

import csv
import io

import pytest
from django.test import Client
from openpyxl import load_workbook

from lianxin.dispatch.models import AuditEntry
from lianxin.ledgers.exports import safe
from tests.ledgers.records import PASSWORD, known_records

pytestmark = pytest.mark.django_db
OCT = "month=2026-10"


@pytest.fixture
def rec():
    return known_records()


def client_for(username, lang="zh-hans"):
    c = Client(HTTP_ACCEPT_LANGUAGE=lang)
    assert c.login(username=username, password=PASSWORD)
    return c


@pytest.mark.parametrize("lang", ["zh-hans", "en"])
def test_the_lead_sees_the_dashboard_with_octobers_figures(rec, lang):
    r = client_for("lead", lang).get(f"/ledgers/?{OCT}")
    assert r.status_code == 200
    html = r.content.decode()
    assert 'id="fig-visits">3<' in html and 'id="fig-satisfaction">50%<' in html
    assert "vendor/echarts/echarts.min.js" in html and "ledgers/dashboard.js" in html
    assert ("满意率" if lang == "zh-hans" else "satisfaction") in html


@pytest.mark.parametrize("slug", ["recipients", "demand", "records"])
def test_each_ledger_lists_its_rows_and_filters(rec, slug):
    c = client_for("lead")
    r = c.get(f"/ledgers/{slug}/?{OCT}")
    assert r.status_code == 200
    want = {"recipients": 5, "demand": 4 + 3, "records": 3 + 1 + 2}[slug]
    # demand: 4 October alerts + 3 non-alert orders created in October (Oct 10, the cancelled one,
    # the one at 23:00 on Oct 31); records: 3 visits, 1 inspection, 2 activities.
    assert r.context["total"] == want
    r = c.get(f"/ledgers/{slug}/?{OCT}&team={rec.t2.pk}")
    assert r.context["total"] == {"recipients": 1, "demand": 1, "records": 2}[slug]


def test_the_demand_ledger_shows_response_minutes(rec):
    r = client_for("lead", "en").get(f"/ledgers/demand/?{OCT}&type=no_power")
    [row] = r.context["rows"]
    cols = [k for k, _l in r.context["columns"]]
    row = dict(zip(cols, row, strict=True))
    assert (row["ack_min"], row["call_min"], row["arrival_min"]) == (5, 8, 40)
    assert row["outcome"] == "false alarm"


def test_bad_filters_show_an_error_not_a_500(rec):
    r = client_for("lead", "en").get("/ledgers/records/?month=2026-13&team=abc&type=zzz&page=-1")
    assert r.status_code == 200
    assert "Give the month as YYYY-MM." in r.content.decode()


def test_field_members_get_403_everywhere(rec):
    c = client_for("field")
    for url in [
        "/ledgers/",
        "/ledgers/records/",
        "/ledgers/recipients.csv",
        "/ledgers/report.pdf",
        "/ledgers/import/",
        "/ledgers/campaigns/",
    ]:
        assert c.get(url).status_code == 403, url


def test_csv_export_has_bom_is_injection_safe_and_audited(rec):
    rec.people[0].risk_notes = '=HYPERLINK("http://x","y")'
    rec.people[0].save()
    r = client_for("lead").get("/ledgers/recipients.csv")
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][0] == "姓名" and len(rows) == 6
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["老人1"][-1].startswith("'=HYPERLINK")
    assert by_name["老人3"][6] == "已撤回"
    entry = AuditEntry.objects.get(action="export")
    assert "recipients" in entry.what and "(5 rows)" in entry.what and entry.user == rec.lead


def test_xlsx_export_opens_with_openpyxl_with_the_rows(rec):
    r = client_for("lead", "en").get(f"/ledgers/records.xlsx?{OCT}")
    assert r.status_code == 200
    ws = load_workbook(io.BytesIO(r.content)).active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:3] == ("ref.", "type", "date")
    assert len(rows) == 1 + 6
    types = sorted(row[1] for row in rows[1:])
    assert types == sorted(
        [
            "repair",
            "home visit",
            "home visit",
            "safety inspection",
            "safety talk",
            "visit to veterans",
        ]
    )
    assert AuditEntry.objects.filter(action="export", what__contains="XLSX").count() == 1


def test_formula_cells_are_neutralised():
    for bad in ["=1+1", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]:
        assert safe(bad).startswith("'")
    assert safe(-5) == -5 and safe("plain") == "plain" and safe(None) == ""


def test_a_photo_is_attached_to_a_campaign_and_served_back(rec):
    from datetime import date

    from django.core.files.uploadedfile import SimpleUploadedFile

    from lianxin.ledgers.models import Campaign

    camp = Campaign.objects.create(
        name="抢修", team=rec.t1, starts_on=date(2026, 7, 20), ends_on=date(2026, 7, 27)
    )
    c = client_for("lead", "en")
    png = b"\x89PNG\r\n\x1a\n" + b"\x01" * 100
    r = c.post(
        f"/ledgers/attach/campaign/{camp.pk}",
        {"file": SimpleUploadedFile("site.png", png), "next": f"/ledgers/campaigns/{camp.pk}/"},
    )
    assert r.status_code == 302 and r["Location"] == f"/ledgers/campaigns/{camp.pk}/"
    att = camp.attachments.get()
    assert b"".join(c.get(f"/ledgers/attachments/{att.pk}").streaming_content) == png
    page = c.get(f"/ledgers/campaigns/{camp.pk}/").content.decode()
    assert "site.png" in page
    # Not a photo: refused with the file's name, nothing stored.
    r = c.post(
        f"/ledgers/attach/campaign/{camp.pk}",
        {"file": SimpleUploadedFile("x.exe", b"MZ" + b"\0" * 50), "next": "https://evil.example/"},
        follow=True,
    )
    assert "x.exe" in r.content.decode() and camp.attachments.count() == 1
    assert r.redirect_chain[0][0] == "/ledgers/"
    assert client_for("field").post(f"/ledgers/attach/campaign/{camp.pk}").status_code == 403
