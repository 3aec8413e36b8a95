"""DingTalk (钉钉) robot with its signed URL: POST {base}/robot/send?access_token=<token>
&timestamp=<ms>&sign=<urlencoded base64(HMAC-SHA256(secret, f"{ms}\\n{secret}"))>."""

import base64
import hashlib
import hmac
import time
from urllib.parse import quote, quote_plus

from lianxin.notify.channels import Message, full_text
from lianxin.notify.channels.http import post_json, vendor_result

BASE = "https://oapi.dingtalk.com"


def signature(secret: str, timestamp_ms: str) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def send(channel, message: Message) -> str:
    url = f"{(channel.url or BASE).rstrip('/')}/robot/send?access_token={quote(channel.token)}"
    if channel.secret:
        ts = str(int(time.time() * 1000))
        url += f"&timestamp={ts}&sign={quote_plus(signature(channel.secret, ts))}"
    payload = {"msgtype": "text", "text": {"content": f"{message.title}\n{full_text(message)}"}}
    return vendor_result(post_json(url, payload), "errcode")
