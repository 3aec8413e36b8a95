"""Signals for whoever sends system alerts on (the escalation channels connect here).

    from lianxin.health.signals import system_alert_raised, system_alert_cleared

    @receiver(system_alert_raised)
    def page_on_call(sender, alert, **kwargs): ...   # alert: a lianxin.health.models.SystemAlert

Each is sent once per alert by the process that opened or cleared it, after the database row
was written (cleared_at and alert.duration are set when system_alert_cleared is sent)."""

from django.dispatch import Signal

system_alert_raised = Signal()
system_alert_cleared = Signal()
