from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class CareConfig(AppConfig):
    name = "lianxin.care"
    label = "care"
    verbose_name = _("Care")

    def ready(self):
        from lianxin.care.roles import ensure_role_groups

        # Permissions only exist after every app has migrated, so the role groups are
        # (re)built here rather than in a data migration; it is idempotent.
        post_migrate.connect(ensure_role_groups, sender=self)
