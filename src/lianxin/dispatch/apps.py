from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class DispatchConfig(AppConfig):
    name = "lianxin.dispatch"
    label = "dispatch"
    verbose_name = _("Dispatch")

    def ready(self):
        from lianxin.care.roles import ensure_role_groups

        post_migrate.connect(ensure_role_groups, sender=self)
