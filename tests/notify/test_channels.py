"""Each channel against a real receiver on 127.0.0.1: the exact payload, the signature, the
idempotency key, and how failures are told apart (transient retried, permanent not)."""

import base64
import hashlib
import hmac
import json
import time

import pytest

from lianxin.notify import channels
from lianxin.notify.channels import Message, TransportError
from lianxin.notify.models import Channel
from tests.notify.receivers import HTTPReceiver

MSG = Message(
    title="[连心] 严重 无电 · H00001",
    text="H00001 自 03:10 起无电",
    link="http://127.0.0.1:8000/alerts/7/",
    key="lx-abc123",
    severity="critical",
)


def channel(kind, url, **kw):
    # Not saved: the transports read fields only, so these tests need no database.
    return Channel(name=kind, kind=kind, url=url, **kw)


def test_webhook_is_signed_over_timestamp_and_body(receiver):
    channels.send(channel("webhook", receiver.url + "/hook", secret="s3cret"), MSG)
    (got,) = receiver.got
    ts = got.headers["X-Lianxin-Timestamp"]
    want = hmac.new(b"s3cret", ts.encode() + b"." + got.body, hashlib.sha256).hexdigest()
    assert got.headers["X-Lianxin-Signature"] == "sha256=" + want
    assert abs(int(ts) - time.time()) < 300
    assert got.headers["Idempotency-Key"] == "lx-abc123"
    assert got.json == {
        "key": "lx-abc123",
        "title": MSG.title,
        "text": MSG.text,
        "link": MSG.link,
        "severity": "critical",
        "language": "zh-hans",
    }


def test_dingtalk_signs_its_url(receiver):
    channels.send(channel("dingtalk", receiver.url, token="tok", secret="SECabc"), MSG)
    (got,) = receiver.got
    assert got.path == "/robot/send"
    assert got.query["access_token"] == "tok"
    ts = got.query["timestamp"]
    mac = hmac.new(b"SECabc", f"{ts}\nSECabc".encode(), hashlib.sha256).digest()
    assert got.query["sign"] == base64.b64encode(mac).decode()
    assert got.json == {
        "msgtype": "text",
        "text": {"content": f"{MSG.title}\n{MSG.text}\n{MSG.link}"},
    }


def test_wecom_body(receiver):
    channels.send(channel("wecom", receiver.url, token="k-1"), MSG)
    (got,) = receiver.got
    assert (got.path, got.query) == ("/cgi-bin/webhook/send", {"key": "k-1"})
    assert got.json == {
        "msgtype": "text",
        "text": {"content": f"{MSG.title}\n{MSG.text}\n{MSG.link}"},
    }


def test_feishu_body_and_signature(receiver):
    channels.send(channel("feishu", receiver.url, token="hook-9", secret="fs"), MSG)
    (got,) = receiver.got
    assert got.path == "/open-apis/bot/v2/hook/hook-9"
    body = got.json
    mac = hmac.new(f"{body['timestamp']}\nfs".encode(), b"", hashlib.sha256).digest()
    assert body["sign"] == base64.b64encode(mac).decode()
    assert body["msg_type"] == "text"
    assert body["content"] == {"text": f"{MSG.title}\n{MSG.text}\n{MSG.link}"}


@pytest.mark.parametrize("kind", ["sms", "voice"])
def test_gateway_template(receiver, kind):
    template = {"phone": "{to}", "content": "{text}", "meta": {"id": "{key}", "lang": "{language}"}}
    ch = channel(kind, receiver.url + "/send", token="gw", options={"body": json.dumps(template)})
    channels.send(ch, Message(**{**MSG.__dict__, "address": "13800000001"}))
    (got,) = receiver.got
    assert got.path == "/send"
    assert got.headers["Authorization"] == "Bearer gw"
    assert got.headers["Idempotency-Key"] == "lx-abc123"
    # A call says the text; its link is the keypress callback ({callback}), not read out.
    assert got.json == {
        "phone": "13800000001",
        "content": f"{MSG.text}\n{MSG.link}" if kind == "sms" else MSG.text,
        "meta": {"id": "lx-abc123", "lang": "zh-hans"},
    }


def test_email_through_a_real_smtp_server(smtp):
    ch = channel(
        "email", f"127.0.0.1:{smtp.port}", options={"from": "duty@lianxin", "to": ["a@x.cn"]}
    )
    channels.send(ch, MSG)
    ((rcpt, mail),) = smtp.messages
    assert rcpt == ["a@x.cn"]
    assert mail["Subject"] == MSG.title
    assert mail["Message-ID"] == "<lx-abc123@lianxin>"
    assert mail.get_content().splitlines() == [MSG.text, MSG.link]


def test_failures_are_told_apart():
    with HTTPReceiver(script=[503, 429, 400]) as r:
        ch = channel("webhook", r.url)
        for permanent in (False, False, True):
            with pytest.raises(TransportError) as err:
                channels.send(ch, MSG)
            assert err.value.permanent is permanent
    # Nobody listening: transient (the receiver may come back).
    with pytest.raises(TransportError) as err:
        channels.send(channel("webhook", r.url), MSG)
    assert not err.value.permanent


def test_a_robot_error_code_is_a_permanent_failure():
    with HTTPReceiver(reply=b'{"errcode": 310000, "errmsg": "sign not match"}') as r:
        with pytest.raises(TransportError) as err:
            channels.send(channel("dingtalk", r.url, token="t", secret="s"), MSG)
    assert err.value.permanent and "310000" in err.value.message
