"""The demo's notification inbox: channels that deliver for real with no outside service.

`lianxin demo` starts a small HTTP receiver on the loopback (stdlib only) and points the demo's
channels at it: a signed webhook for the duty room's group, an SMS gateway that texts the duty
operator on the roster, the team lead's webhook (in English) and the SMS gateway for residents
and families. The receiver checks what a real one would (the webhook's HMAC and timestamp, the
gateway's bearer token), answers like a provider, treats a repeated Idempotency-Key as the same
message, appends every message to `<LIANXIN_HOME>/demo-inbox.jsonl` and shows them at its own
address, newest first. The worker records each attempt on the alert's timeline, so the case
page shows the escalation as it goes out.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MAX_AGE = 300  # seconds: the webhook scheme's freshness rule
KEEP = 500  # messages the inbox page shows

# (name, kind, audience, language, path): the channels the demo configures.
DEMO_CHANNELS = [
    ("值班室群（演示收件箱）", "webhook", "duty", "zh-hans", "/webhook"),
    ("值班员短信（演示收件箱）", "sms", "duty", "zh-hans", "/sms"),
    ("Team lead (demo inbox)", "webhook", "lead", "en", "/webhook"),
    ("老人与家属短信（演示收件箱）", "sms", "people", "zh-hans", "/sms"),
]
GATEWAY_BODY = {"to": "{to}", "text": "{text}", "key": "{key}"}
SHIFT = timedelta(hours=12)
ROSTER_DAYS = 7


@dataclass
class Inbox:
    """The running receiver: its URL, where it writes, and what it received."""

    url: str
    path: Path
    secret: str
    token: str
    messages: list[dict] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    out: object = None

    def take(self, item: dict) -> bool:
        """Keep a message; False when its idempotency key was seen (a retry of one message)."""
        with self.lock:
            if item["key"] in self.keys:
                return False
            self.keys.add(item["key"])
            self.messages.append(item)
            del self.messages[:-KEEP]
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(item, ensure_ascii=False) + "\n")
        if self.out is not None:
            what = f"{item['via']} to {item['to']}" if item["to"] else item["via"]
            text = " ".join(item["text"].split())
            print(f"inbox: {what}: {text[:90]}", file=self.out, flush=True)
        return True

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _signature(secret: str, ts: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _handler(inbox: Inbox):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = self.headers.get("Content-Length") or "0"
            if not length.isdigit() or int(length) > 1_000_000:
                return self._answer(400, {"error": "a Content-Length up to 1 MB"})
            body = self.rfile.read(int(length))
            key = self.headers.get("Idempotency-Key", "")
            try:
                data = json.loads(body or b"{}")
            except ValueError:
                return self._answer(400, {"error": "body is not JSON"})
            if not isinstance(data, dict) or not key:
                return self._answer(400, {"error": "a JSON object and an Idempotency-Key"})
            if self.path == "/webhook":
                ts = self.headers.get("X-Lianxin-Timestamp", "")
                given = self.headers.get("X-Lianxin-Signature", "")
                fresh = ts.isdigit() and abs(time.time() - int(ts)) <= MAX_AGE
                if not fresh or not hmac.compare_digest(given, _signature(inbox.secret, ts, body)):
                    return self._answer(401, {"error": "bad signature"})
                item = {
                    "via": "webhook",
                    "to": "",
                    "title": str(data.get("title", "")),
                    "text": str(data.get("text", "")),
                    "link": str(data.get("link", "")),
                    "severity": str(data.get("severity", "")),
                    "language": str(data.get("language", "")),
                }
            elif self.path == "/sms":
                if self.headers.get("Authorization") != f"Bearer {inbox.token}":
                    return self._answer(401, {"error": "bad token"})
                item = {"via": "sms", "to": str(data.get("to", "")), "text": str(data.get("text"))}
                item |= {"title": "", "link": "", "severity": "", "language": ""}
            else:
                return self._answer(404, {"error": "unknown path"})
            item |= {"key": key, "at": datetime.now(UTC).isoformat(timespec="seconds")}
            fresh_key = inbox.take(item)
            self._answer(200, {"ok": True, "inbox": len(inbox.messages), "repeat": not fresh_key})

        def do_GET(self):
            with inbox.lock:
                items = list(reversed(inbox.messages))
            if self.path == "/messages.json":
                return self._answer(200, items)
            if self.path != "/":
                return self._answer(404, {"error": "unknown path"})
            rows = "".join(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>".format(
                    html.escape(m["at"]),
                    html.escape(m["via"]),
                    html.escape(m["to"]),
                    html.escape(m["text"]).replace("\n", "<br>"),
                    f' <a href="{html.escape(m["link"])}">link</a>' if m["link"] else "",
                )
                for m in items
            )
            page = (
                '<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="5">'
                "<title>Lianxin demo inbox</title><h1>Demo inbox · 演示收件箱</h1>"
                f"<p>{len(items)} message(s), newest first; also in {html.escape(str(inbox.path))}"
                "</p><table border=1 cellpadding=4><tr><th>received (UTC)</th><th>via</th>"
                f"<th>to</th><th>text</th></tr>{rows}</table>"
            )
            self._send(200, page.encode(), "text/html; charset=utf-8")

        def _answer(self, status, data):
            self._send(status, json.dumps(data, ensure_ascii=False).encode(), "application/json")

        def _send(self, status, body: bytes, kind: str):
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # the demo's log shows one line per message instead
            pass

    return Handler


def _bind(host: str, port: int) -> ThreadingHTTPServer:
    try:
        return ThreadingHTTPServer((host, port), BaseHTTPRequestHandler)
    except OSError:
        # The port next to the duty room is taken: any free one (the URL is printed).
        return ThreadingHTTPServer((host, 0), BaseHTTPRequestHandler)


def start(home: Path, host: str = "127.0.0.1", port: int = 8001, out=None) -> Inbox:
    """Start the inbox, configure the demo's channels to deliver to it and roster the demo's
    duty operators; returns the running inbox."""
    server = _bind(host, port)
    url = f"http://{host}:{server.server_address[1]}"
    secret, token = configure_channels(url)
    inbox = Inbox(url=url, path=Path(home) / "demo-inbox.jsonl", secret=secret, token=token)
    inbox.out = out
    if inbox.path.exists():
        # Keys already delivered stay delivered across a restart of the demo.
        for line in inbox.path.read_text(encoding="utf-8").splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            inbox.keys.add(item.get("key", ""))
            inbox.messages.append(item)
        del inbox.messages[:-KEEP]
    server.RequestHandlerClass = _handler(inbox)
    inbox.server = server
    threading.Thread(target=server.serve_forever, daemon=True, name="demo-inbox").start()
    ensure_roster()
    return inbox


def configure_channels(url: str) -> tuple[str, str]:
    """Create the demo's channels (once) and point them at the inbox at `url` (each start: its
    port may change). Returns the webhook secret and the gateway token the inbox checks."""
    from lianxin.notify.models import Channel

    found = {c.name: c for c in Channel.objects.filter(options__demo_inbox=True)}
    secret = next((c.secret for c in found.values() if c.kind == "webhook" and c.secret), "")
    token = next((c.token for c in found.values() if c.kind == "sms" and c.token), "")
    secret = secret or secrets.token_urlsafe(24)
    token = token or secrets.token_urlsafe(24)
    for name, kind, audience, language, path in DEMO_CHANNELS:
        ch = found.get(name) or Channel(name=name, kind=kind, audience=audience, language=language)
        ch.url = url + path
        ch.options = {"demo_inbox": True} | ({"body": GATEWAY_BODY} if kind == "sms" else {})
        if kind == "webhook":
            ch.secret = secret
        else:
            ch.token = token
        ch.save()
    return secret, token


def ensure_roster(now: datetime | None = None) -> list:
    """Twelve-hour shifts for the next week in each team with duty operators, alternating
    between them, the first (`operator` in the demo) on duty now: escalation's first step
    reaches the operator who is on shift. Teams already rostered now are left alone."""
    from django.utils import timezone

    from lianxin.care.models import Membership
    from lianxin.care.roles import Role
    from lianxin.notify.models import RosterShift

    now = now or timezone.now()
    created = []
    by_team: dict[int, list] = {}
    for m in (
        Membership.objects.filter(user__groups__name=Role.DUTY_OPERATOR)
        .select_related("user", "team")
        .order_by("user__username")
    ):
        by_team.setdefault(m.team_id, []).append(m)
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    for team_id, members in by_team.items():
        if RosterShift.objects.filter(
            team_id=team_id, starts_at__lte=now, ends_at__gt=now
        ).exists():
            continue
        for i in range(ROSTER_DAYS * 2):
            created.append(
                RosterShift(
                    team_id=team_id,
                    user=members[i % len(members)].user,
                    starts_at=start + i * SHIFT,
                    ends_at=start + (i + 1) * SHIFT,
                    note="demo roster",
                )
            )
    RosterShift.objects.bulk_create(created)
    return created


def on_duty_now(now: datetime | None = None) -> list[str]:
    """Each operator rostered now, as the demo prints it: name (username, phone) · team."""
    from django.utils import timezone

    from lianxin.care.models import Membership
    from lianxin.notify.models import RosterShift

    now = now or timezone.now()
    lines = []
    for r in RosterShift.objects.filter(starts_at__lte=now, ends_at__gt=now).select_related(
        "user", "team"
    ):
        phone = (
            Membership.objects.filter(team=r.team, user=r.user).values_list("phone", flat=True)
        ).first() or "-"
        local = timezone.localtime(r.ends_at).strftime("%m-%d %H:%M")
        lines.append(
            f"{r.user.get_full_name() or r.user.username} ({r.user.username}, {phone}) · "
            f"{r.team.name} · until {local}"
        )
    return lines
