"""Real receivers on 127.0.0.1 for the channel tests: an HTTP server that records every request
exactly as it arrived and answers from a script of status codes, and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.services import free_port


@dataclass
class Received:
    path: str
    query: dict
    headers: dict
    body: bytes
    status: int
    at: float = field(default_factory=time.time)  # arrival, for bench/notify.py

    @property
    def json(self):
        return json.loads(self.body)


class HTTPReceiver:
    """Answers each request with the next status of `script` (then 200 for ever), with
    `reply` as the body (a JSON errcode of 0 keeps the robot transports happy)."""

    def __init__(self, script=(), reply=b'{"errcode": 0, "code": 0}', delay=0.0):
        self.script = list(script)
        self.delay = delay
        self.reply = reply
        self.got: list[Received] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:
                    # The sender died mid-request (the kill -9 trials): nothing was delivered,
                    # as a real receiver would refuse a truncated body.
                    self.close_connection = True
                    return
                with receiver.lock:
                    status = receiver.script.pop(0) if receiver.script else 200
                    split = urlsplit(self.path)
                    receiver.got.append(
                        Received(
                            split.path,
                            {k: v[0] for k, v in parse_qs(split.query).items()},
                            dict(self.headers.items()),
                            body,
                            status,
                        )
                    )
                if receiver.delay:
                    time.sleep(receiver.delay)  # a slow receiver: the sender waits for it
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                payload = receiver.reply if status == 200 else b'{"error": "try later"}'
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def delivered(self) -> list[Received]:
        return [r for r in self.got if r.status == 200]


class SMTPReceiver:
    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages = []
        receiver = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                receiver.messages.append(
                    (envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default))
                )
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()
