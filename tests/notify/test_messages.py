"""Each recipient reads the message in their language, short enough for a text message."""

import pytest

from lianxin.alerts.service import apply_findings
from lianxin.care.models import Household
from lianxin.notify.messages import STAFF_TEXT_LIMIT
from tests.alerts.helpers import NOW, enroll, finding, town
from tests.notify.helpers import at, staff_channels, work

pytestmark = pytest.mark.django_db


def test_staff_get_their_language_and_a_short_text_with_the_link(receiver):
    town()
    staff_channels(receiver.url)  # duty in Chinese
    staff_channels(receiver.url + "/en", language="en")
    home = enroll(Household.objects.first())
    long_zh = "自昨天 21:40 起无用电活动；" * 20
    long_en = "No activity since 21:40 yesterday; " * 20
    (alert,) = apply_findings(
        [finding(home, kind="high_load", severity="warning", reason_zh=long_zh,
                 reason_en=long_en)],
        now=NOW,
    )  # fmt: skip
    work(at(seconds=5))
    by_path = {g.path: g.json for g in receiver.delivered()}
    zh, en = by_path["/duty"], by_path["/en/duty"]
    assert zh["title"] == f"【连心】警告 负荷过高 · {home.code}"
    assert en["title"] == f"[Lianxin] warning high load · {home.code}"
    assert en["text"].startswith("No activity since 21:40") and zh["text"].startswith("自昨天")
    assert len(zh["text"]) <= STAFF_TEXT_LIMIT and zh["text"].endswith("…")
    assert len(en["text"]) <= STAFF_TEXT_LIMIT
    assert en["link"] == zh["link"] and en["link"].endswith(f"/alerts/{alert.pk}/")
