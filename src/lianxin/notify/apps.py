from django.apps import AppConfig
from django.db.models.signals import post_migrate, post_save
from django.utils.translation import gettext_lazy as _


class NotifyConfig(AppConfig):
    name = "lianxin.notify"
    label = "notify"
    verbose_name = _("Notifications")

    def ready(self):
        from lianxin.alerts.models import AlertEvent
        from lianxin.care.roles import ensure_role_groups
        from lianxin.notify import service

        post_migrate.connect(ensure_role_groups, sender=self)
        # Every alert change writes an AlertEvent inside the change's own transaction; reacting
        # to that row writes the outbox in the same transaction, and catches every path that
        # opens, releases, acknowledges or closes an alert without touching each of them.
        post_save.connect(service.on_alert_event, sender=AlertEvent, dispatch_uid="notify-alerts")
        # Inside a monitor step the chains start together at its end: one insert per table for
        # the step's outbox rows, still in the step's transaction.
        from lianxin.alerts.signals import step

        step.connect(service.on_step, dispatch_uid="notify-step")

        from lianxin.health.signals import system_alert_cleared, system_alert_raised
        from lianxin.notify import system

        system_alert_raised.connect(system.on_raised, dispatch_uid="notify-system-raised")
        system_alert_cleared.connect(system.on_cleared, dispatch_uid="notify-system-cleared")
