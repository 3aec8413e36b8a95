from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AlertsConfig(AppConfig):
    name = "lianxin.alerts"
    label = "alerts"
    verbose_name = _("Alerts")

    def ready(self):
        from lianxin.care.roles import ensure_role_groups

        # This app's permissions exist only once its own post_migrate has run; rebuild the
        # role groups then too (care's signal fires before ours).
        post_migrate.connect(ensure_role_groups, sender=self)
