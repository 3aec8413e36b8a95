"""The monthly report PDF: its text read back with pdftotext (Chinese included, so the CJK font
really rendered), and its pages rendered to PNG with pdftoppm under test-artifacts/."""

import shutil
import subprocess
from pathlib import Path

import pytest
from django.test import Client

from lianxin.dispatch.models import AuditEntry
from tests.ledgers.records import PASSWORD, known_records
from tests.services import require_program

pytestmark = pytest.mark.django_db
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def text_of(pdf: bytes, tmp_path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(
        [require_program("pdftotext", "poppler-utils"), "-layout", str(path), "-"],
        capture_output=True,
        check=True,
    )
    return out.stdout.decode("utf-8")


def render_pages(pdf: bytes, name: str, tmp_path) -> list[Path]:
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(pdf)
    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob(f"{name}-*.png"):
        old.unlink()
    subprocess.run(
        [
            require_program("pdftoppm", "poppler-utils"),
            "-png",
            "-r",
            "60",
            str(path),
            str(ARTIFACTS / name),
        ],
        check=True,
    )
    shutil.copy(path, ARTIFACTS / f"{name}.pdf")
    return sorted(ARTIFACTS.glob(f"{name}-*.png"))


@pytest.mark.parametrize(
    "lang, words",
    [
        ("zh-hans", ["连心月度报告", "2026-10", "上门服务", "满意率", "50.0%", "误报", "至到场"]),
        (
            "en",
            [
                "Lianxin monthly report",
                "2026-10",
                "home visits",
                "satisfaction rate",
                "50.0%",
                "false alarms",
                "to arrival",
            ],
        ),
    ],
)
def test_the_monthly_pdf_reads_back_in_both_languages(tmp_path, lang, words):
    known_records()
    c = Client()
    assert c.login(username="lead", password=PASSWORD)
    r = c.get(f"/ledgers/report.pdf?month=2026-10&lang={lang}")
    assert r.status_code == 200 and r["Content-Type"] == "application/pdf"
    pdf = r.content
    assert pdf.startswith(b"%PDF-")
    text = text_of(pdf, tmp_path)
    for word in words:
        assert word in text, word
    # The figures block: 3 visits, 1 repair, 34 beneficiaries.
    assert " 3" in text and "34" in text
    fonts = subprocess.run(
        [require_program("pdffonts", "poppler-utils"), str(tmp_path / "report.pdf")],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    cjk = [line for line in fonts.splitlines() if "Noto-Sans-CJK" in line]
    assert cjk and all("CJK-SC" in line and " yes " in line for line in cjk)  # SC, embedded
    pages = render_pages(pdf, f"monthly-report-{lang}", tmp_path)
    assert pages and all(p.stat().st_size > 5000 for p in pages)
    assert AuditEntry.objects.filter(action="export", what__contains="PDF").count() == 1
