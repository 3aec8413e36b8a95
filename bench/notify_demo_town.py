"""What each channel's receiver gets in the demo town: one grid outage and one inactivity alert
nobody answers. Every channel kind is configured against a loopback receiver (HTTP) or a local
SMTP server (aiosmtpd); the worker runs passes on a clock moved by hand through the escalation.

    .venv/bin/python bench/notify_demo_town.py

Runs in a fresh temporary data directory (SQLite). Prints every request as received.
"""

import json
import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["LIANXIN_HOME"] = tempfile.mkdtemp(prefix="lianxin-demo-notify-")
os.environ["DJANGO_SETTINGS_MODULE"] = "lianxin.web.settings"
os.environ.pop("DATABASE_URL", None)


def main() -> None:
    from lianxin.web.setup import migrate, setup_django

    setup_django()
    migrate()
    from tests.notify.receivers import HTTPReceiver, SMTPReceiver

    from lianxin.alerts.service import apply_findings
    from lianxin.care.models import CareRecipient, Consent, Household, TransformerArea
    from lianxin.care.seed import seed_demo_town
    from lianxin.engine.findings import Finding
    from lianxin.notify import worker
    from lianxin.notify.models import Channel, PersonPreference

    seed_demo_town()
    now = datetime.now(UTC).replace(microsecond=0)
    with HTTPReceiver() as http, SMTPReceiver() as smtp:
        gateway = json.dumps({"to": "{to}", "text": "{text}", "key": "{key}"})
        Channel.objects.create(
            name="值班邮箱",
            kind="email",
            url=f"127.0.0.1:{smtp.port}",
            options={"from": "duty@lianxin.local", "to": ["duty@lianxin.local"]},
        )
        Channel.objects.create(
            name="值班 webhook", kind="webhook", url=http.url + "/hook", secret="webhook-secret"
        )
        Channel.objects.create(name="值班企业微信群", kind="wecom", url=http.url, token="wecom-key")
        Channel.objects.create(
            name="值班钉钉群", kind="dingtalk", url=http.url, token="ding-token", secret="SECding"
        )
        Channel.objects.create(
            name="Lead (Feishu)",
            kind="feishu",
            url=http.url,
            token="fs-hook",
            secret="fs-secret",
            audience="lead",
            language="en",
        )
        Channel.objects.create(
            name="短信网关",
            kind="sms",
            audience="people",
            url=http.url + "/sms",
            token="sms-token",
            options={"body": gateway},
        )
        Channel.objects.create(name="语音网关", kind="voice", audience="people",
                               url=http.url + "/voice", token="voice-token",
                               options={"body": gateway})  # fmt: skip

        # The grid outage: every home of one transformer area.
        area = TransformerArea.objects.order_by("code").first()
        homes = list(Household.objects.filter(transformer_area=area))
        outage = Finding(
            kind="grid_outage", severity="critical", started_at=now - timedelta(minutes=12),
            detected_at=now, transformer_area=area.code, households=tuple(h.code for h in homes),
            reason_en=f"{len(homes)} meters of {area.name_en} lost power together at the same "
            "time", reason_zh=f"{area.name}{len(homes)} 块电表同时失电",
        )  # fmt: skip
        # The inactivity alert: a resident outside that area, opted in, family consent given.
        person = CareRecipient.objects.exclude(household__transformer_area=area).first()
        PersonPreference.objects.create(care_recipient=person, ask_resident_first=True)
        Consent.objects.create(care_recipient=person, scope="family", given_at=now,
                               given_by="本人")  # fmt: skip
        contacts = list(person.contacts.all())
        inactive = Finding(
            kind="inactivity", severity="warning", started_at=now - timedelta(hours=3),
            detected_at=now, household_id=person.household.code,
            reason_en="No activity since 21:40 yesterday; on 26 of the last 28 days this home was "
            "active by 07:10", reason_zh="自昨天 21:40 起无用电活动；过去 28 天中有 26 天在 07:10 "
            "前已有活动",
        )  # fmt: skip
        apply_findings([outage, inactive], now=now)
        for minutes in (0.1, 15.1, 30.2, 60.3):
            r = worker.run_once(now + timedelta(minutes=minutes))
            print(f"== worker pass at +{minutes:g} min: sent {r.sent}, failed {r.failed}")
        print(f"\nresident: {person.name} ({person.phone}); contacts: "
              + ", ".join(f"{c.name} {c.phone} by {c.notify_by}" for c in contacts))  # fmt: skip
        print("\n== HTTP receiver")
        for g in http.got:
            query = "&".join(f"{k}={v}" for k, v in g.query.items())
            sig = {
                k: v for k, v in g.headers.items() if k.startswith(("X-Lianxin", "Idem", "Auth"))
            }
            print(f"POST {g.path}{'?' + query if query else ''} {sig}")
            print("  " + json.dumps(g.json, ensure_ascii=False))
        print("\n== SMTP receiver")
        for rcpt, mail in smtp.messages:
            print(f"to {rcpt} Subject: {mail['Subject']} Message-ID: {mail['Message-ID']}")
            print("  " + mail.get_content().strip().replace("\n", "\n  "))


if __name__ == "__main__":
    main()
