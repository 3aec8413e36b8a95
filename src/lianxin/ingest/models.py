"""Import runs and the quarantine of rejected rows.

Every rejected row is kept: in the run's quarantine Parquet file (all of them, with file, line,
field, value, reason) and, up to KEEP_IN_DB per run, as Rejection rows a person can browse in the
admin. A file with a million bad rows must not bury the database.
"""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

KEEP_IN_DB = 10_000


class ImportRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        OK = "ok", _("all rows accepted")
        PARTIAL = "partial", _("some rows rejected")
        FAILED = "failed", _("nothing could be read")

    source = models.CharField(_("source"), max_length=500)
    description = models.CharField(_("what the file holds"), max_length=300, blank=True)
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.RUNNING
    )
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    rows = models.BigIntegerField(_("rows read"), default=0)
    accepted = models.BigIntegerField(_("accepted"), default=0)
    replaced = models.BigIntegerField(_("replaced"), default=0)
    duplicate = models.BigIntegerField(_("duplicate"), default=0)
    rejected = models.BigIntegerField(_("rejected"), default=0)
    rejected_by_reason = models.JSONField(_("rejected by reason"), default=dict, blank=True)
    message = models.TextField(_("message"), blank=True)
    quarantine_file = models.CharField(_("quarantine file"), max_length=500, blank=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("import run")
        verbose_name_plural = _("import runs")

    def __str__(self):
        return f"{self.source} ({self.get_status_display()})"


class Rejection(models.Model):
    """One rejected row (or one value of a row): where it was, what was wrong, and the value."""

    run = models.ForeignKey(
        ImportRun, verbose_name=_("import run"), on_delete=models.CASCADE, related_name="rejections"
    )
    line = models.BigIntegerField(_("line"), null=True, blank=True)
    field = models.CharField(_("field"), max_length=100, blank=True)
    value = models.CharField(_("value"), max_length=200, blank=True)
    code = models.CharField(_("code"), max_length=32)
    reason = models.CharField(_("reason"), max_length=300)

    class Meta:
        ordering = ["run", "line", "id"]
        verbose_name = _("rejected row")
        verbose_name_plural = _("rejected rows")
        indexes = [
            # The admin filters a run's rejections by code ("show me the unknown meters").
            models.Index(fields=["run", "code"], name="ingest_rejection_run_code"),
        ]

    def __str__(self):
        return f"line {self.line}: {self.reason}"

    @classmethod
    def of(cls, run, line, field, value, code, reason) -> "Rejection":
        """A rejection fit for any database: cut to the column sizes, and with NUL bytes (which
        PostgreSQL text refuses, and garbage files contain) written out as \\x00."""
        return cls(
            run=run,
            line=line,
            field=db_text(field, 100),
            value=db_text(value, 200),
            code=db_text(code, 32),
            reason=db_text(reason, 300),
        )


def db_text(value, size: int) -> str:
    text = "" if value is None else str(value)
    # Lone surrogates (from JSON "\ud800") cannot be encoded for any database: written out too.
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\x00")[:size]
