"""Bulk import of care recipients from the team's own spreadsheet (XLSX or CSV, Chinese headers).

Two steps: `read()` validates every row and says what it would do (create, update, no change),
naming each error by row and column; `apply()` writes, all rows or none, and only when no row has
an error. A person is matched by household code and name, so importing the same sheet again
updates rather than duplicates.
"""

from __future__ import annotations

import csv
import io
import re
import time as time_
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from lianxin.care.models import (
    CareRecipient,
    Consent,
    EmergencyContact,
    Household,
    Team,
    TransformerArea,
    phone_validator,
)
from lianxin.ledgers.figures import local_tz

MAX_ROWS = 20_000
MAX_BYTES = 5 * 1024 * 1024

# (header in the sheet, field, required, help shown in the template)
COLUMNS = [
    ("姓名", "name", True, gettext_lazy("full name")),
    ("英文名", "name_en", False, gettext_lazy("name in pinyin or English")),
    ("出生年份", "birth_year", True, gettext_lazy("four digits, e.g. 1938")),
    ("电话", "phone", False, gettext_lazy("digits, spaces and dashes")),
    ("住户编号", "household", True, gettext_lazy("the household code, e.g. H00012")),
    ("地址", "address", False, gettext_lazy("needed when the household is new")),
    ("社区", "community", False, ""),
    ("台区编号", "area", False, gettext_lazy("transformer area code")),
    ("服务队", "team", False, gettext_lazy("team name")),
    ("风险备注", "risk_notes", False, ""),
    ("紧急联系人", "contact_name", False, ""),
    ("联系人关系", "contact_relation", False, ""),
    ("联系人电话", "contact_phone", False, ""),
    ("同意监测", "consent", False, gettext_lazy("是 or 否 (yes or no)")),
    ("同意日期", "consent_date", False, gettext_lazy("YYYY-MM-DD")),
]
HEADER_OF = {f: h for h, f, _r, _h in COLUMNS}
YES = {"是", "yes", "y", "同意", "1", "true"}
NO = {"否", "no", "n", "不同意", "0", "false"}


class ImportError_(ValidationError):
    """The file as a whole cannot be read (not a spreadsheet, no header, too big)."""


@dataclass
class Row:
    line: int  # the row number a spreadsheet shows (the header is row 1)
    values: dict[str, str]
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # (column, value, message)
    action: str = ""  # create / update / unchanged
    changes: list[str] = field(default_factory=list)

    def error(self, fld: str, message: str):
        self.errors.append((HEADER_OF.get(fld, fld), self.values.get(fld, ""), message))


@dataclass
class Result:
    filename: str
    rows: list[Row]

    @property
    def errors(self) -> list[Row]:
        return [r for r in self.rows if r.errors]

    def count(self, action: str) -> int:
        return sum(1 for r in self.rows if r.action == action and not r.errors)


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return f"{v:%Y-%m-%d}"
    if isinstance(v, date):
        return f"{v:%Y-%m-%d}"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _table(name: str, data: bytes) -> list[list[str]]:
    if len(data) > MAX_BYTES:
        raise ImportError_(
            _("%(file)s is larger than %(mb)d MB.")
            % {"file": name, "mb": MAX_BYTES // 1024 // 1024}
        )
    if data[:4] == b"PK\x03\x04":
        from openpyxl import load_workbook

        try:
            wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 - any damage reads the same to the user
            raise ImportError_(
                _("%(file)s is not a readable XLSX workbook (%(why)s).")
                % {"file": name, "why": exc.__class__.__name__}
            ) from exc
        ws = wb.worksheets[0]
        rows = [[_cell(v) for v in r] for r in ws.iter_rows(values_only=True)]
        wb.close()
        return rows
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ImportError_(_("%(file)s is neither UTF-8 nor GBK text.") % {"file": name})
    if "\x00" in text:
        raise ImportError_(_("%(file)s is not a CSV file or an XLSX workbook.") % {"file": name})
    return [[c.strip() for c in r] for r in csv.reader(io.StringIO(text))]


def read(name: str, data: bytes) -> Result:
    table = _table(name, data)
    while table and not any(table[0]):
        table.pop(0)
    if not table:
        raise ImportError_(_("%(file)s has no header row.") % {"file": name})
    header = table[0]
    fields = []
    known = {h: f for h, f, _r, _h in COLUMNS}
    for i, h in enumerate(header):
        if h in known:
            fields.append(known[h])
        elif h == "":
            fields.append(None)
        else:
            raise ImportError_(
                _("%(file)s, row 1, column %(col)d: unknown header “%(h)s”; use the template's.")
                % {"file": name, "col": i + 1, "h": h}
            )
    missing = [h for h, f, required, _h in COLUMNS if required and f not in fields]
    if missing:
        raise ImportError_(
            _("%(file)s, row 1: missing column(s) %(cols)s.")
            % {"file": name, "cols": "、".join(missing)}
        )
    body = table[1:]
    if len(body) > MAX_ROWS:
        raise ImportError_(
            _("%(file)s has %(n)d rows; import at most %(max)d at a time.")
            % {"file": name, "n": len(body), "max": MAX_ROWS}
        )
    rows = []
    for offset, raw in enumerate(body):
        if not any(raw):
            continue  # blank rows between blocks are common in hand-kept sheets
        values = {f: "" for _h, f, _r, _x in COLUMNS}
        for f, v in zip(fields, raw, strict=False):
            if f:
                values[f] = v
        rows.append(Row(line=offset + 2, values=values))
    _validate(rows)
    return Result(name, rows)


def _validate(rows: list[Row]):
    areas = {a.code: a for a in TransformerArea.objects.all()}
    teams = {}
    for t in Team.objects.all():
        teams[t.name] = t
        if t.name_en:
            teams[t.name_en] = t
    homes = {
        h.code: h for h in Household.objects.filter(code__in={r.values["household"] for r in rows})
    }
    existing = {
        (p.household.code, p.name): p
        for p in CareRecipient.objects.filter(household__code__in=list(homes))
        .select_related("household", "team")
        .prefetch_related("consents", "contacts")
    }
    seen: dict[tuple[str, str], int] = {}
    this_year = timezone.localdate().year
    for r in rows:
        v = r.values
        for _h, f, required, _x in COLUMNS:
            if required and not v[f]:
                r.error(f, _("required"))
        for f, limit in [
            ("name", 100),
            ("name_en", 100),
            ("address", 200),
            ("community", 100),
            ("contact_name", 100),
            ("contact_relation", 50),
        ]:
            if len(v[f]) > limit:
                r.error(f, _("longer than %(n)d characters") % {"n": limit})
        if v["birth_year"]:
            if not re.fullmatch(r"\d{4}", v["birth_year"]):
                r.error("birth_year", _("not a four-digit year"))
            elif not 1900 <= int(v["birth_year"]) <= this_year:
                r.error("birth_year", _("not between 1900 and this year"))
        for f in ("phone", "contact_phone"):
            if v[f]:
                try:
                    phone_validator(v[f])
                except ValidationError:
                    r.error(f, _("not a phone number"))
        if any(v[f] for f in ("contact_name", "contact_relation", "contact_phone")):
            for f in ("contact_name", "contact_phone"):
                if not v[f]:
                    r.error(f, _("required when an emergency contact is given"))
        home = homes.get(v["household"])
        if v["household"] and home is None and not v["address"]:
            r.error("address", _("required for a new household"))
        if v["area"] and v["area"] not in areas:
            r.error("area", _("no transformer area with this code"))
        if v["team"] and v["team"] not in teams:
            r.error("team", _("no team of this name"))
        consent = v["consent"].lower()
        if consent and consent not in YES | NO:
            r.error("consent", _("write 是 or 否"))
        if v["consent_date"]:
            try:
                d = date.fromisoformat(v["consent_date"].replace("/", "-"))
                if d > timezone.localdate():
                    r.error("consent_date", _("in the future"))
            except ValueError:
                r.error("consent_date", _("not a date (YYYY-MM-DD)"))
        key = (v["household"], v["name"])
        if v["household"] and v["name"]:
            if key in seen:
                r.error("name", _("the same person as row %(n)d") % {"n": seen[key]})
            else:
                seen[key] = r.line
        if r.errors:
            continue
        person = existing.get(key)
        if person is None:
            r.action = "create"
        else:
            r.changes = _changes(person, v, teams)
            r.action = "update" if r.changes else "unchanged"


def _changes(p: CareRecipient, v: dict, teams) -> list[str]:
    out = []
    simple = {
        "name_en": p.name_en,
        "birth_year": str(p.birth_year),
        "phone": p.phone,
        "risk_notes": p.risk_notes,
    }
    for f, old in simple.items():
        if v[f] and v[f] != old:
            out.append(HEADER_OF[f])
    if v["team"] and teams[v["team"]].pk != p.team_id:
        out.append(HEADER_OF["team"])
    if v["contact_name"] and not any(
        c.name == v["contact_name"] and c.phone == v["contact_phone"] for c in p.contacts.all()
    ):
        out.append(HEADER_OF["contact_name"])
    active = any(c.active and c.scope == "monitoring" for c in p.consents.all())
    consent = v["consent"].lower()
    if (consent in YES and not active) or (consent in NO and active):
        out.append(HEADER_OF["consent"])
    return out


@transaction.atomic
def apply(result: Result, user) -> dict[str, int]:
    if result.errors:
        raise ImportError_(_("Fix the rows with errors first; nothing was written."))
    teams = {}
    for t in Team.objects.all():
        teams[t.name] = t
        if t.name_en:
            teams[t.name_en] = t
    areas = {a.code: a for a in TransformerArea.objects.all()}
    counts = {"create": 0, "update": 0, "unchanged": 0}
    for r in result.rows:
        v = r.values
        home = Household.objects.filter(code=v["household"]).first()
        if home is None:
            home = Household.objects.create(
                code=v["household"],
                address=v["address"],
                community=v["community"],
                transformer_area=areas.get(v["area"]),
            )
        person = CareRecipient.objects.filter(household=home, name=v["name"]).first()
        if person is None:
            person = CareRecipient(household=home, name=v["name"])
        person.birth_year = int(v["birth_year"])
        for f in ("name_en", "phone", "risk_notes"):
            if v[f]:
                setattr(person, f, v[f])
        if v["team"]:
            person.team = teams[v["team"]]
        person.full_clean()
        person.save()
        if v["contact_name"]:
            EmergencyContact.objects.update_or_create(
                care_recipient=person,
                name=v["contact_name"],
                defaults={"relation": v["contact_relation"] or "—", "phone": v["contact_phone"]},
            )
        consent = v["consent"].lower()
        active = person.consents.filter(scope="monitoring", withdrawn_at__isnull=True).first()
        if consent in YES and active is None:
            day = (
                date.fromisoformat(v["consent_date"].replace("/", "-"))
                if v["consent_date"]
                else timezone.localdate()
            )
            Consent.objects.create(
                care_recipient=person,
                scope="monitoring",
                given_at=datetime.combine(day, time(9), tzinfo=local_tz()),
                given_by=person.name,
                recorded_by=user,
            )
        elif consent in NO and active is not None:
            active.withdraw(person.name, note=_("withdrawn by spreadsheet import"))
        counts[r.action] += 1
    return counts


def template_xlsx() -> bytes:
    from openpyxl import Workbook
    from openpyxl.comments import Comment

    wb = Workbook()
    ws = wb.active
    ws.title = "特别亲人"
    ws.append([h for h, _f, _r, _x in COLUMNS])
    for cell, (_h, _f, required, hint) in zip(ws[1], COLUMNS, strict=True):
        text = (str(_("required")) + ". " if required else "") + str(hint)
        if text.strip():
            cell.comment = Comment(text, "Lianxin")
        ws.column_dimensions[cell.column_letter].width = 14
    ws.append(
        [
            "王秀英",
            "Wang Xiuying",
            1941,
            "13800001234",
            "H00001",
            "三苏路12号1栋1单元101室",
            "苏祠社区",
            "",
            "",
            "独居，听力较弱",
            "李敏",
            "女儿",
            "13900005678",
            "是",
            "2026-03-01",
        ]
    )
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def stored(home: Path, token: str) -> Path | None:
    """The upload kept between preview and import; tokens are hex only (never a path)."""
    if not re.fullmatch(r"[0-9a-f]{32}", token or ""):
        return None
    path = Path(home) / "imports" / token
    return path if path.exists() else None


def forget_old(folder: Path, hours: int = 24) -> None:
    """Uploads previewed but never imported are removed after a day: they hold personal data."""
    cutoff = time_.time() - hours * 3600
    for path in folder.iterdir():
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
