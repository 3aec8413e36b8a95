"""API tokens (one per data source) and the idempotency records of pushed batches."""

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

TOKEN_PREFIX = "lx_"


def hash_token(raw: str) -> str:
    # Tokens are 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A bearer token for one data source. Only its hash is stored; the token is shown once."""

    name = models.CharField(_("source name"), max_length=64, unique=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    # The first characters of the token, so a person can tell tokens apart in a list.
    prefix = models.CharField(_("token prefix"), max_length=12, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, name: str, note: str = "", created_by=None) -> tuple["ApiToken", str]:
        """Create a token for a source; returns the row and the raw token (never stored)."""
        token = cls(name=name, note=note, created_by=created_by)
        raw = token.new_secret()
        token.save()
        return token, raw

    def new_secret(self) -> str:
        """Give this token a fresh random secret and return it; only its hash is kept."""
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.prefix = raw[:10]
        self.token_hash = hash_token(raw)
        return raw

    def revoke(self):
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])
            from lianxin import health

            health.forget("token", self.name)  # a revoked token's silence is not an alert


class PushedBatch(models.Model):
    """The answer given to a batch sent with an Idempotency-Key, replayed if it is sent again."""

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="batches")
    key = models.CharField(max_length=200)
    body_sha256 = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("pushed batch")
        verbose_name_plural = _("pushed batches")
        constraints = [
            models.UniqueConstraint(fields=["token", "key"], name="pushed_batch_key_once_per_token")
        ]
        # Serves the purge of old records (created_at < cutoff).
        indexes = [models.Index(fields=["created_at"], name="pushed_batch_created")]

    def __str__(self):
        return f"{self.token.name}: {self.key}"
