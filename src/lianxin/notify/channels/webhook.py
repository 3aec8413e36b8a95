"""Generic webhook: a JSON POST signed with HMAC-SHA256.

Headers: `X-Lianxin-Timestamp: <unix seconds>`, `X-Lianxin-Signature: sha256=<hex>` where hex =
HMAC-SHA256(secret, f"{timestamp}.{raw body}"), and `Idempotency-Key: <key>` (the same on every
retry of one notification). A receiver checks the signature over the exact bytes received and
refuses a timestamp more than 5 minutes old.
"""

import hashlib
import hmac
import json
import time

from lianxin.notify.channels import Message
from lianxin.notify.channels.http import post_json


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def send(channel, message: Message) -> str:
    body = json.dumps(
        {
            "key": message.key,
            "title": message.title,
            "text": message.text,
            "link": message.link,
            "severity": message.severity,
            "language": message.language,
        },
        ensure_ascii=False,
    ).encode()
    ts = str(int(time.time()))
    headers = {"X-Lianxin-Timestamp": ts, "Idempotency-Key": message.key}
    if channel.secret:
        headers["X-Lianxin-Signature"] = sign(channel.secret, ts, body)
    return post_json(channel.url, None, headers, body=body)
