"""Audit entries are stored as a code with parameters and shown in the reader's language;
entries from before codes are converted by the migration and stay readable."""

import importlib

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.utils import translation

from lianxin.dispatch import audit_codes
from lianxin.dispatch.models import AuditEntry
from tests.web.helpers import as_user

pytestmark = pytest.mark.django_db

migration = importlib.import_module("lianxin.dispatch.migrations.0003_h2_audit_codes")


def _in(lang, entry):
    with translation.override(lang):
        return entry.described


def test_a_view_is_stored_as_a_code_and_shown_in_the_readers_language(client, case):
    home = case["home"]
    as_user(client, "operator").get(f"/households/{home.code}/")
    entry = AuditEntry.objects.get(code="household")
    assert entry.params == {"code": home.code}
    assert entry.what == f"household {home.code}"  # the English text, for searching
    assert _in("en", entry) == f"household {home.code}"
    assert _in("zh-hans", entry) != entry.what and home.code in _in("zh-hans", entry)
    # The directory search is a code too (it was an untranslated text before).
    as_user(client, "operator").get("/residents/", {"q": "杜"})
    search = AuditEntry.objects.get(code="directory_search")
    assert search.params == {"q": "杜"}
    assert _in("zh-hans", search).endswith("杜") and "resident" not in _in("zh-hans", search)


def test_the_migration_gives_old_entries_their_code_and_keeps_the_rest_as_written():
    user = get_user_model().objects.create(username="auditor")
    old = {
        "alert queue": ("alert_queue", {}),
        "alert 12: H0001": ("alert", {"pk": 12, "code": "H0001"}),
        "carerecipient 7 (admin)": ("admin_object", {"model": "carerecipient", "pk": 7}),
        "care-recipient ledger page 3": ("ledger_page", {"n": 3}),
        "inspections ledger 2026-11 XLSX (4 rows)": (
            "ledger_export",
            {"ledger": "inspections", "month": "2026-11", "fmt": "XLSX", "n": 4},
        ),
        "resident directory: 王 8857": ("directory_search", {"q": "王 8857"}),
    }
    for what in [*old, "something hand-written"]:
        AuditEntry.objects.create(user=user, action="view", what=what, path="/")
    migration.add_codes(apps, None)
    for what, (code, params) in old.items():
        entry = AuditEntry.objects.get(what=what)
        assert (entry.code, entry.params) == (code, params), what
        # Read back in English it is the same text (the model by its name); under zh it is
        # the catalogue's.
        assert _in("en", entry) == what.replace("carerecipient", "care recipient")
    assert "告警队列" == _in("zh-hans", AuditEntry.objects.get(what="alert queue"))
    admin_view = _in("zh-hans", AuditEntry.objects.get(what="carerecipient 7 (admin)"))
    assert "carerecipient" not in admin_view and "7" in admin_view
    kept = AuditEntry.objects.get(what="something hand-written")
    assert kept.code == "" and _in("zh-hans", kept) == "something hand-written"


def test_every_code_has_both_translations_and_an_unknown_code_is_refused():
    for code, msgid in audit_codes.MESSAGES.items():
        with translation.override("zh-hans"):
            assert translation.gettext(msgid) != msgid, code
    with pytest.raises(audit_codes.UnknownCode, match="'n'"):
        audit_codes.english("care_recipients_csv", {})
