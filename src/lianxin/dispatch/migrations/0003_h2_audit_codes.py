"""Audit entries get a code and its parameters, shown in the reader's language when read.

Entries written before this carry only their English text (`what`): each is given the code
whose text it matches, with the values read back out of it. The patterns below are those texts
as the code wrote them until now; they are used here once and nowhere else. An entry that
matches none keeps no code and is shown as written. `what` is left as it was.
"""

import re

from django.db import migrations, models

# (code, the English text it was written as, which values are integers)
WRITTEN_AS = [
    ("alert_queue", r"alert queue", ()),
    ("alert", r"alert (?P<pk>\d+): (?P<code>.+)", ("pk",)),
    ("welfare_list", r"welfare list of alert (?P<pk>\d+)", ("pk",)),
    ("field_orders", r"field view: my work orders", ()),
    ("work_order", r"work order (?P<pk>\d+)", ("pk",)),
    ("household", r"household (?P<code>.+)", ()),
    ("directory", r"resident directory", ()),
    ("directory_search", r"resident directory: (?P<q>.*)", ()),
    ("care_recipients_csv", r"care recipients CSV \((?P<n>\d+) rows\)", ("n",)),
    ("ledger_page", r"care-recipient ledger page (?P<n>\d+)", ("n",)),
    ("monthly_report_pdf", r"monthly report (?P<month>\S+) PDF \((?P<lang>[\w-]+)\)", ()),
    (
        "ledger_export",
        r"(?P<ledger>\S+) ledger (?P<month>\S+) (?P<fmt>CSV|XLSX) \((?P<n>\d+) rows\)",
        ("n",),
    ),
    ("admin_list", r"(?P<model>\w+) list \(admin\)", ()),
    ("admin_object", r"(?P<model>\w+) (?P<pk>\d+) \(admin\)", ("pk",)),
]
PATTERNS = [(code, re.compile(rf"{text}\Z"), ints) for code, text, ints in WRITTEN_AS]


def code_of(what: str):
    """(code, params) of an entry written as `what`, or None."""
    for code, pattern, ints in PATTERNS:
        m = pattern.match(what)
        if m:
            params = {k: int(v) if k in ints else v for k, v in m.groupdict().items()}
            return code, params
    return None


def add_codes(apps, schema_editor):
    AuditEntry = apps.get_model("dispatch", "AuditEntry")
    # Entries are append-only (the model refuses a save of an existing row): update() is the
    # one write, done once here. Grouped by text: many entries share one ("alert queue").
    texts = (
        AuditEntry.objects.filter(code="").order_by().values_list("what", flat=True).distinct()
    )
    for what in texts.iterator():
        found = code_of(what)
        if found is not None:
            code, params = found
            AuditEntry.objects.filter(code="", what=what).update(code=code, params=params)


class Migration(migrations.Migration):
    dependencies = [
        ("dispatch", "0002_h6_work_order_origins"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditentry",
            name="code",
            field=models.CharField(blank=True, default="", max_length=40, verbose_name="code"),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="params",
            field=models.JSONField(blank=True, default=dict, verbose_name="parameters"),
        ),
        # Going back leaves `what`, which every entry still has.
        migrations.RunPython(add_codes, migrations.RunPython.noop),
    ]
