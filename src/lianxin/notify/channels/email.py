"""Email over SMTP (smtplib). url: "host:port"; options: from, to (list, for staff channels),
username, starttls. The idempotency key is the Message-ID, so a repeat is recognisable."""

import smtplib
from email.message import EmailMessage
from email.utils import formatdate

from lianxin.notify.channels import Message, TransportError, full_text


def send(channel, message: Message) -> str:
    opts = channel.options or {}
    host, _, port = (channel.url or "localhost:25").rpartition(":")
    if not host:
        host, port = port, "25"
    to = [message.address] if message.address else list(opts.get("to") or [])
    if not to:
        raise TransportError("no recipient address", permanent=True)
    msg = EmailMessage()
    msg["Subject"] = message.title
    msg["From"] = opts.get("from", "lianxin@localhost")
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = f"<{message.key}@lianxin>"
    msg.set_content(full_text(message))
    try:
        with smtplib.SMTP(host, int(port), timeout=10) as smtp:
            if opts.get("starttls"):
                smtp.starttls()
            if opts.get("username"):
                smtp.login(opts["username"], channel.secret)
            refused = smtp.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        raise TransportError(f"recipients refused: {exc.recipients}", permanent=True) from exc
    except smtplib.SMTPAuthenticationError as exc:
        raise TransportError(f"login refused: {exc.smtp_code}", permanent=True) from exc
    except smtplib.SMTPResponseException as exc:
        raise TransportError(
            f"SMTP {exc.smtp_code} {exc.smtp_error!r}"[:200], permanent=500 <= exc.smtp_code < 600
        ) from exc
    except (TimeoutError, smtplib.SMTPException, OSError, ValueError) as exc:
        raise TransportError(f"SMTP: {exc}") from exc
    if refused:
        return f"250 sent; refused {sorted(refused)}"
    return "250 sent"
