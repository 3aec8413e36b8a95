"""Ledger exports: CSV (UTF-8 with a BOM, so Excel reads the Chinese) and XLSX (openpyxl).

Cells are safe against formula injection (OWASP "CSV Injection"): a text cell that begins with
=, +, -, @, a tab or a carriage return is prefixed with a single quote, so a spreadsheet shows
it as text instead of running it. Numbers stay numbers.
"""

from __future__ import annotations

import csv
import io

from django.http import HttpResponse
from django.utils import timezone
from openpyxl import Workbook
from openpyxl.utils import get_column_letter

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe(value):
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = str(value)
    if text.startswith(FORMULA_START):
        return "'" + text
    return text


def table(ledger, scope, type_):
    header = [str(label) for _key, label in ledger.columns]
    keys = [key for key, _label in ledger.columns]
    rows = ([safe(row[k]) for k in keys] for row in ledger.all_rows(scope, type_))
    return header, rows


def filename(ledger, scope, ext: str) -> str:
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return f"{ledger.slug}-{scope.period.label.replace(' ', '')}-{stamp}.{ext}"


def csv_response(ledger, scope, type_) -> tuple[HttpResponse, int]:
    header, rows = table(ledger, scope, type_)
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.writer(buf)
    writer.writerow(header)
    n = 0
    for row in rows:
        writer.writerow(row)
        n += 1
    response = HttpResponse(buf.getvalue().encode("utf-8"), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename(ledger, scope, "csv")}"'
    return response, n


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx_response(ledger, scope, type_) -> tuple[HttpResponse, int]:
    header, rows = table(ledger, scope, type_)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(str(ledger.title)[:31])
    for i, label in enumerate(header, start=1):
        ws.column_dimensions[get_column_letter(i)].width = max(10, min(40, len(label) * 2 + 4))
    ws.freeze_panes = "A2"
    ws.append(header)
    n = 0
    for row in rows:
        ws.append(row)
        n += 1
    out = io.BytesIO()
    wb.save(out)
    response = HttpResponse(out.getvalue(), content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="{filename(ledger, scope, "xlsx")}"'
    return response, n
