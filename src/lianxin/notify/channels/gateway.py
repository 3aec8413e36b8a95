"""SMS and voice-call gateways through an HTTP template a team points at its provider.

options["body"] is a JSON template; every string in it may use {to}, {text}, {key},
{language} and {callback}. For SMS the text already holds the link. The token, if any, goes in
`Authorization: Bearer <token>`; the idempotency key also goes in `Idempotency-Key`.
Default body: {"to": "{to}", "text": "{text}", "key": "{key}"} (voice: plus
"callback": "{callback}").

Voice calls: {text} is what the call says (no link in it), and {callback} is a single-use,
expiring URL the provider POSTs the pressed key to, as JSON {"digits": "1"} or a form field
`digits` (`Digits` as Twilio sends it is taken too). The resident presses 1 for "I am fine"
(the alert resolves as resident_fine) or 2 for "I need help" (the duty room is called now);
a staff member presses 1 to acknowledge. When the channel has a secret, the callback must be
signed like Lianxin's own webhook: `X-Lianxin-Timestamp: <unix seconds>` and
`X-Lianxin-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{raw body}")>`, at most 5
minutes old. The answer is JSON {"result": ...}; 403 for a bad signature, 404/410 for a
forged, expired or spent callback.
"""

import json

from lianxin.notify.channels import Message, TransportError, full_text
from lianxin.notify.channels.http import post_json

DEFAULT_BODY = {"to": "{to}", "text": "{text}", "key": "{key}"}
DEFAULT_VOICE_BODY = {**DEFAULT_BODY, "callback": "{callback}"}


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
    voice = channel.kind == "voice"
    template = (channel.options or {}).get("body", DEFAULT_VOICE_BODY if voice else DEFAULT_BODY)
    if isinstance(template, str):
        try:
            template = json.loads(template)
        except ValueError as exc:
            raise TransportError(f"the body template is not JSON: {exc}", permanent=True) from exc
    payload = render(
        template,
        {
            "to": message.address,
            # A call reads the text out; its link is the callback, not something to say.
            "text": message.text if voice else full_text(message),
            "key": message.key,
            "language": message.language,
            "callback": message.link if voice else "",
        },
    )
    headers = {"Idempotency-Key": message.key}
    if channel.token:
        headers["Authorization"] = f"Bearer {channel.token}"
    return post_json(channel.url, payload, headers)
