from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class DispatchConfig(AppConfig):
    name = "lianxin.dispatch"
    label = "dispatch"
    verbose_name = _("Dispatch")

    def ready(self):
        from lianxin.care.audit import personal_data_viewed
        from lianxin.care.roles import ensure_role_groups
        from lianxin.dispatch.service import record_view

        post_migrate.connect(ensure_role_groups, sender=self)
        personal_data_viewed.connect(record_view, dispatch_uid="lianxin.dispatch.audit")
