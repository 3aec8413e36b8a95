from django.db import models
from django.utils.translation import gettext_lazy as _


class SourceDay(models.Model):
    """What one streaming source (an API token, MQTT) delivered on one local day. File imports
    need no such row: each file has its ImportRun."""

    source = models.CharField(_("source"), max_length=200)
    day = models.DateField(_("day"))
    batches = models.PositiveIntegerField(_("batches"), default=0)
    received = models.BigIntegerField(_("rows received"), default=0)
    accepted = models.BigIntegerField(_("accepted"), default=0)
    replaced = models.BigIntegerField(_("replaced"), default=0)
    duplicate = models.BigIntegerField(_("duplicate"), default=0)
    rejected = models.BigIntegerField(_("rejected"), default=0)
    rejected_by_reason = models.JSONField(_("rejected by reason"), default=dict, blank=True)

    class Meta:
        ordering = ["-day", "source"]
        verbose_name = _("source day")
        verbose_name_plural = _("source days")
        constraints = [
            models.UniqueConstraint(fields=["source", "day"], name="datahealth_one_row_per_day")
        ]

    def __str__(self):
        return f"{self.source} {self.day}"
