"""One transport per channel kind behind one interface: `send(channel, message)` returns a short
response excerpt or raises TransportError(text, permanent=...). Transient failures (a timeout,
a 5xx, 429) are retried with backoff; permanent ones (a 4xx, a refused address) are not.

Transports use the standard library only (smtplib, urllib): each vendor protocol is one JSON
POST, and every base URL must be configurable so a team (and the tests) can point it anywhere.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


class TransportError(Exception):
    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.message = message
        self.permanent = permanent


@dataclass(frozen=True)
class Message:
    title: str
    text: str  # short: fits an SMS with the link
    link: str
    key: str  # idempotency key, the same on every attempt
    address: str = ""  # phone or email for person-addressed channels
    severity: str = "warning"
    language: str = "zh-hans"


MODULES = {
    "email": "lianxin.notify.channels.email",
    "webhook": "lianxin.notify.channels.webhook",
    "wecom": "lianxin.notify.channels.wecom",
    "dingtalk": "lianxin.notify.channels.dingtalk",
    "feishu": "lianxin.notify.channels.feishu",
    "sms": "lianxin.notify.channels.gateway",
    "voice": "lianxin.notify.channels.gateway",
}


def send(channel, message: Message) -> str:
    return importlib.import_module(MODULES[channel.kind]).send(channel, message)


def full_text(message: Message) -> str:
    return f"{message.text}\n{message.link}" if message.link else message.text
