"""The Chinese catalogue is complete and its compiled .mo matches the .po that people edit."""

import ast
import gettext
from pathlib import Path

import lianxin

LOCALE = Path(lianxin.__file__).parent / "locale"


def parse_po(path: Path) -> dict[str, str]:
    entries, key, current = {}, None, {}
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        if line.startswith(("msgid ", "msgstr ", "msgctxt ", "msgid_plural ", "msgstr[")):
            key = line.split(" ", 1)[0]
            current[key] = ast.literal_eval(line.split(" ", 1)[1])
        elif line.startswith('"') and key:
            current[key] += ast.literal_eval(line)
        elif not line.strip():
            if current.get("msgid"):
                msgid = current["msgid"]
                if "msgctxt" in current:
                    msgid = f"{current['msgctxt']}\x04{msgid}"
                entries[msgid] = current.get("msgstr", current.get("msgstr[0]", ""))
            key, current = None, {}
    return entries


def test_chinese_catalogue_is_complete_and_compiled():
    po = parse_po(LOCALE / "zh_Hans/LC_MESSAGES/django.po")
    assert len(po) > 50
    untranslated = [msgid for msgid, msgstr in po.items() if not msgstr]
    assert untranslated == []
    with open(LOCALE / "zh_Hans/LC_MESSAGES/django.mo", "rb") as f:
        mo = gettext.GNUTranslations(f)
    stale = [msgid for msgid, msgstr in po.items() if mo.gettext(msgid) != msgstr]
    assert stale == [], "run `lianxin manage compilemessages` after editing the .po"


def test_fuzzy_entries_are_not_left_behind():
    text = (LOCALE / "zh_Hans/LC_MESSAGES/django.po").read_text(encoding="utf-8")
    assert "#, fuzzy" not in text
