from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HealthConfig(AppConfig):
    name = "lianxin.health"
    label = "health"
    verbose_name = _("Lianxin's own health")
    default_auto_field = "django.db.models.BigAutoField"
