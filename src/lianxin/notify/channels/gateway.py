"""SMS and voice-call gateways through an HTTP template a team points at its provider.

options["body"] is a JSON template; every string in it may use {to}, {text}, {key} and
{language} (the text already holds the link). The token, if any, goes in
`Authorization: Bearer <token>`; the idempotency key also goes in `Idempotency-Key`.
Default body: {"to": "{to}", "text": "{text}", "key": "{key}"}.
"""

import json

from lianxin.notify.channels import Message, TransportError, full_text
from lianxin.notify.channels.http import post_json

DEFAULT_BODY = {"to": "{to}", "text": "{text}", "key": "{key}"}


def render(template, values: dict):
    if isinstance(template, str):
        out = template
        for name, value in values.items():
            out = out.replace("{" + name + "}", value)
        return out
    if isinstance(template, list):
        return [render(v, values) for v in template]
    if isinstance(template, dict):
        return {k: render(v, values) for k, v in template.items()}
    return template


def send(channel, message: Message) -> str:
    if not message.address:
        raise TransportError("no phone number to send to", permanent=True)
    template = (channel.options or {}).get("body", DEFAULT_BODY)
    if isinstance(template, str):
        try:
            template = json.loads(template)
        except ValueError as exc:
            raise TransportError(f"the body template is not JSON: {exc}", permanent=True) from exc
    payload = render(
        template,
        {
            "to": message.address,
            "text": full_text(message),
            "key": message.key,
            "language": message.language,
        },
    )
    headers = {"Idempotency-Key": message.key}
    if channel.token:
        headers["Authorization"] = f"Bearer {channel.token}"
    return post_json(channel.url, payload, headers)
