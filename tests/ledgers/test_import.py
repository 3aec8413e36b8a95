"""Bulk import of care recipients: template, preview, errors by row and column, re-import."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from openpyxl import Workbook, load_workbook

from lianxin.care.models import CareRecipient, Consent, EmergencyContact, Household
from lianxin.ledgers import imports
from tests.ledgers.records import PASSWORD, known_records

pytestmark = pytest.mark.django_db
HEADER = [
    "姓名",
    "英文名",
    "出生年份",
    "电话",
    "住户编号",
    "地址",
    "社区",
    "台区编号",
    "服务队",
    "风险备注",
    "紧急联系人",
    "联系人关系",
    "联系人电话",
    "同意监测",
    "同意日期",
]
GOOD = [
    [
        "张桂兰",
        "Zhang Guilan",
        "1939",
        "13800001111",
        "H1",
        "",
        "",
        "",
        "连心桥服务队",
        "独居",
        "张伟",
        "儿子",
        "13900002222",
        "是",
        "2026-03-01",
    ],
    [
        "刘永福",
        "",
        "1944",
        "",
        "H99",
        "三苏路99号",
        "苏祠社区",
        "TA1",
        "湖滨服务队",
        "",
        "",
        "",
        "",
        "否",
        "",
    ],
]


def xlsx(rows, header=HEADER) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(header)
    for r in rows:
        ws.append(r)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def csv_bytes(rows, encoding="utf-8-sig") -> bytes:
    lines = [",".join(HEADER)] + [",".join(r) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


@pytest.fixture
def rec():
    return known_records()


@pytest.fixture
def lead():
    c = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert c.login(username="lead", password=PASSWORD)
    return c


def upload(client, name, data):
    return client.post("/ledgers/import/", {"file": SimpleUploadedFile(name, data)})


def test_preview_writes_nothing_then_import_creates_and_reimport_updates(rec, lead):
    people = CareRecipient.objects.count()
    r = upload(lead, "名单.xlsx", xlsx(GOOD))
    assert r.status_code == 200
    assert (r.context["created"], r.context["updated"], r.context["bad"]) == (2, 0, 0)
    assert CareRecipient.objects.count() == people  # the preview wrote nothing
    r = lead.post("/ledgers/import/", {"token": r.context["token"]})
    assert r.status_code == 302
    assert CareRecipient.objects.count() == people + 2
    zhang = CareRecipient.objects.get(name="张桂兰")
    assert zhang.household.code == "H1" and zhang.team.name == "连心桥服务队"
    assert zhang.active_consents().get().given_at.date().isoformat() == "2026-03-01"
    assert EmergencyContact.objects.filter(care_recipient=zhang, phone="13900002222").count() == 1
    liu = CareRecipient.objects.get(name="刘永福")
    assert liu.household.address == "三苏路99号" and not liu.active_consents().exists()

    # The same sheet again changes nothing; a changed phone is an update, not a second person.
    r = upload(lead, "名单.xlsx", xlsx(GOOD))
    assert (r.context["created"], r.context["updated"], r.context["unchanged"]) == (0, 0, 2)
    changed = [GOOD[0][:3] + ["13800009999"] + GOOD[0][4:], GOOD[1]]
    r = upload(lead, "名单.csv", csv_bytes(changed))
    assert (r.context["created"], r.context["updated"]) == (0, 1)
    assert [row.changes for row in r.context["result"].rows][0] == ["电话"]
    lead.post("/ledgers/import/", {"token": r.context["token"]})
    assert CareRecipient.objects.count() == people + 2
    assert CareRecipient.objects.get(name="张桂兰").phone == "13800009999"
    assert EmergencyContact.objects.filter(care_recipient=zhang).count() == 1


def test_every_kind_of_bad_row_is_named_by_row_and_column(rec, lead):
    bad = [
        ["", "", "1939", "", "H1", "", "", "", "", "", "", "", "", "", ""],  # row 2: no name
        ["甲", "", "19x9", "", "H1", "", "", "", "", "", "", "", "", "", ""],  # row 3
        ["乙", "", "1850", "", "H1", "", "", "", "", "", "", "", "", "", ""],  # row 4
        ["丙", "", "1940", "call me", "H1", "", "", "", "", "", "", "", "", "", ""],  # row 5
        ["丁", "", "1940", "", "H77", "", "", "", "", "", "", "", "", "", ""],  # row 6
        ["戊", "", "1940", "", "H1", "", "", "TA9", "", "", "", "", "", "", ""],  # row 7
        ["己", "", "1940", "", "H1", "", "", "", "无此队", "", "", "", "", "", ""],  # row 8
        ["庚", "", "1940", "", "H1", "", "", "", "", "", "", "", "", "也许", ""],  # row 9
        ["辛", "", "1940", "", "H1", "", "", "", "", "", "", "", "", "是", "2026-02-30"],
        ["壬", "", "1940", "", "H1", "", "", "", "", "", "王", "儿子", "", "", ""],  # row 11
        ["甲", "", "1941", "", "H1", "", "", "", "", "", "", "", "", "", ""],  # row 12: dup of 3
        ["癸", "", "1940", "", "H1", "", "", "", "", "", "", "", "", "是", "2999-01-01"],
    ]
    r = upload(lead, "坏表.xlsx", xlsx(bad))
    got = {
        (row.line, col): value
        for row in r.context["result"].errors
        for col, value, _msg in row.errors
    }
    assert set(got) == {
        (2, "姓名"),
        (3, "出生年份"),
        (4, "出生年份"),
        (5, "电话"),
        (6, "地址"),
        (7, "台区编号"),
        (8, "服务队"),
        (9, "同意监测"),
        (10, "同意日期"),
        (11, "联系人电话"),
        (12, "姓名"),
        (13, "同意日期"),
    }
    assert got[(3, "出生年份")] == "19x9" and got[(5, "电话")] == "call me"
    html = r.content.decode()
    assert "与第 3 行是同一人" in html and 'id="confirm"' not in html
    before = CareRecipient.objects.count()
    with pytest.raises(imports.ImportError_):
        imports.apply(r.context["result"], rec.lead)
    assert CareRecipient.objects.count() == before


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("x.csv", "姓名,年龄\n张三,80\n".encode(), "未知表头“年龄”"),
        ("x.csv", "姓名,住户编号\n张三,H1\n".encode(), "缺少列 出生年份"),
        ("x.xlsx", b"PK\x03\x04not really a zip", "不是可读取的 XLSX 工作簿"),
        ("x.csv", b"", "没有表头行"),
        ("x.csv", b"\x00\x01\x02abc", "不是 CSV 文件或 XLSX 工作簿"),
        ("x.csv", b"\xff\xfe\xfa\xfb", "既不是 UTF-8 也不是 GBK 文本"),
    ],
)
def test_files_that_cannot_be_read_say_why(rec, lead, name, data, message):
    r = upload(lead, name, data)
    assert r.status_code == 400
    assert message in r.context["file_error"] and name in r.context["file_error"]


def test_gbk_csv_from_excel_is_read(rec, lead):
    r = upload(lead, "名单.csv", csv_bytes(GOOD, encoding="gb18030"))
    assert r.context["created"] == 2 and r.context["bad"] == 0


def test_the_template_downloads_and_imports_cleanly(rec, lead):
    r = lead.get("/ledgers/import/template.xlsx")
    assert r.status_code == 200
    ws = load_workbook(io.BytesIO(r.content)).active
    assert [c.value for c in ws[1]] == HEADER
    ws.cell(row=2, column=5, value="H2")  # a household the known records have
    out = io.BytesIO()
    ws.parent.save(out)
    r = upload(lead, "template.xlsx", out.getvalue())
    assert (r.context["created"], r.context["bad"]) == (1, 0)


def test_a_forged_token_is_refused(rec, lead):
    r = lead.post("/ledgers/import/", {"token": "../../etc/passwd"})
    assert r.status_code == 302
    assert Household.objects.count() == 5 and Consent.objects.count() == 4


def test_previews_never_imported_are_removed_after_a_day(rec, lead, settings):
    import os
    import time
    from pathlib import Path

    upload(lead, "a.xlsx", xlsx(GOOD))
    folder = Path(settings.LIANXIN_HOME) / "imports"
    old = sorted(folder.iterdir())
    assert len(old) == 2  # the upload and its name
    day_ago = time.time() - 25 * 3600
    for p in old:
        os.utime(p, (day_ago, day_ago))
    upload(lead, "b.xlsx", xlsx(GOOD))
    assert not any(p.exists() for p in old) and len(list(folder.iterdir())) == 2
