from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class LedgersConfig(AppConfig):
    name = "lianxin.ledgers"
    label = "ledgers"
    verbose_name = _("Ledgers")

    def ready(self):
        from lianxin.care.roles import ensure_role_groups
        from lianxin.dispatch.service import ORDER_PANELS
        from lianxin.ledgers.orders import order_panel

        # This app's permissions exist only after its own migrate: rebuild the groups then too.
        post_migrate.connect(ensure_role_groups, sender=self)
        # The work-order page shows the order's members, materials and photos.
        if order_panel not in ORDER_PANELS:
            ORDER_PANELS.append(order_panel)
