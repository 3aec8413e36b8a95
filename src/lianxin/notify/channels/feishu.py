"""Feishu (飞书) custom robot: POST {base}/open-apis/bot/v2/hook/<token>; with a signing
secret the body carries timestamp (s) and sign = base64(HMAC-SHA256(key=f"{ts}\\n{secret}",
msg=b""))."""

import base64
import hashlib
import hmac
import time
from urllib.parse import quote

from lianxin.notify.channels import Message, full_text
from lianxin.notify.channels.http import post_json, vendor_result

BASE = "https://open.feishu.cn"


def signature(secret: str, timestamp: str) -> str:
    mac = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def send(channel, message: Message) -> str:
    url = f"{(channel.url or BASE).rstrip('/')}/open-apis/bot/v2/hook/{quote(channel.token)}"
    payload = {"msg_type": "text", "content": {"text": f"{message.title}\n{full_text(message)}"}}
    if channel.secret:
        ts = str(int(time.time()))
        payload = {"timestamp": ts, "sign": signature(channel.secret, ts)} | payload
    return vendor_result(post_json(url, payload), "code")
