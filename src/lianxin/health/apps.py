from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

# What the monitor hands the engine from the care database: homes with their transformer area,
# meters (and replaced meters), residents' settings. A change to any of them stamps the data
# directory so the monitor re-reads the registry at its next step rather than every step.
REGISTRY_MODELS = ("Household", "Meter", "MeterReplacement", "TransformerArea", "CareRecipient")


class HealthConfig(AppConfig):
    name = "lianxin.health"
    label = "health"
    verbose_name = _("Lianxin's own health")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        for name in REGISTRY_MODELS:
            model = self.apps.get_model("care", name)
            post_save.connect(_registry_changed, sender=model, dispatch_uid=f"registry-{name}")
            post_delete.connect(_registry_changed, sender=model, dispatch_uid=f"registry-{name}-d")


def _registry_changed(sender, **kwargs):
    from django.conf import settings
    from django.db import transaction

    from lianxin.store.wake import stamp_registry

    # Once committed: a monitor woken before the commit would read the old rows.
    transaction.on_commit(lambda: stamp_registry(settings.LIANXIN_HOME))
