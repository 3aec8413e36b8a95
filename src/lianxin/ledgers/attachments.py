"""Attachments: photos and scanned forms, checked and stored under LIANXIN_HOME/attachments.

The type is read from the file's first bytes, not from its name or the browser's word for it:
a renamed executable is refused. Files are stored under a name made from their hash, so a
client-chosen name never becomes a path.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from lianxin.alerts.models import TransitionError
from lianxin.ledgers.models import Attachment

MAX_BYTES = 10 * 1024 * 1024
# content type -> (magic prefix, extension)
KINDS = {
    "image/jpeg": (b"\xff\xd8\xff", "jpg"),
    "image/png": (b"\x89PNG\r\n\x1a\n", "png"),
    "application/pdf": (b"%PDF-", "pdf"),
}


class AttachmentError(TransitionError):
    pass


def sniff(head: bytes) -> str | None:
    for content_type, (magic, _ext) in KINDS.items():
        if head.startswith(magic):
            return content_type
    # WebP: RIFF....WEBP, what many phones save photos as.
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def attach(user, uploaded, **owner) -> Attachment:
    """Store `uploaded` (a Django UploadedFile, or anything with name, size and chunks()) for
    exactly one owner: work_order=, inspection=, campaign= or activity=."""
    name = Path(getattr(uploaded, "name", "") or "file").name[:200]
    if uploaded.size > MAX_BYTES:
        raise AttachmentError(
            _("%(name)s is %(size).1f MB; attachments may be at most %(max)d MB.")
            % {"name": name, "size": uploaded.size / 1024 / 1024, "max": MAX_BYTES // 1024 // 1024}
        )
    if uploaded.size == 0:
        raise AttachmentError(_("%(name)s is empty.") % {"name": name})
    data = b"".join(uploaded.chunks())
    content_type = sniff(data[:16])
    if content_type is None:
        raise AttachmentError(
            _("%(name)s is not a JPEG, PNG, WebP photo or a PDF.") % {"name": name}
        )
    digest = hashlib.sha256(data).hexdigest()
    ext = KINDS.get(content_type, (b"", "webp"))[1]
    day = timezone.localdate()
    rel = f"attachments/{day:%Y/%m}/{digest[:16]}-{timezone.now():%H%M%S%f}.{ext}"
    target = Path(settings.LIANXIN_HOME) / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
    tmp.replace(target)
    with transaction.atomic():
        return Attachment.objects.create(
            name=name,
            content_type=content_type,
            size=len(data),
            sha256=digest,
            path=rel,
            uploaded_by=user,
            **owner,
        )


def open_attachment(att: Attachment):
    return open(Path(settings.LIANXIN_HOME) / att.path, "rb")
