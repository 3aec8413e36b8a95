"""Channels pointed at loopback receivers, and a clock the tests move by hand."""

import json
from datetime import timedelta

from lianxin.care.models import Consent, EmergencyContact
from lianxin.notify import worker
from lianxin.notify.models import Channel
from tests.alerts.helpers import NOW

GATEWAY_BODY = json.dumps({"to": "{to}", "text": "{text}", "key": "{key}"})


def staff_channels(url, language="zh-hans"):
    duty = Channel.objects.create(
        name="duty", kind="webhook", url=url + "/duty", secret="k", language=language
    )
    lead = Channel.objects.create(
        name="lead",
        kind="webhook",
        url=url + "/lead",
        secret="k",
        audience="lead",
        language=language,
    )
    return duty, lead


def people_channel(url, kind="sms", **kw):
    return Channel.objects.create(
        name=kind,
        kind=kind,
        url=url + f"/{kind}",
        audience="people",
        options={"body": GATEWAY_BODY},
        **kw,
    )


def family(person, phone="13900000002", notify_by="sms"):
    Consent.objects.create(
        care_recipient=person, scope="family", given_at=NOW - timedelta(days=30), given_by="本人"
    )
    return EmergencyContact.objects.create(
        care_recipient=person, name="王芳", relation="女儿", phone=phone, notify_by=notify_by
    )


def at(minutes=0, seconds=0):
    return NOW + timedelta(minutes=minutes, seconds=seconds)


def work(*moments):
    """Run worker passes at each moment (the controllable clock)."""
    return [worker.run_once(now=m) for m in moments]
