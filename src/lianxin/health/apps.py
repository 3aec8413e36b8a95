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
        from django.db.models.signals import post_delete, post_save, pre_save

        for name in REGISTRY_MODELS:
            model = self.apps.get_model("care", name)
            if name != "Household":
                pre_save.connect(_home_before, sender=model, dispatch_uid=f"registry-{name}-p")
            post_save.connect(_registry_changed, sender=model, dispatch_uid=f"registry-{name}")
            post_delete.connect(_registry_changed, sender=model, dispatch_uid=f"registry-{name}-d")


def _registry_changed(sender, instance=None, **kwargs):
    from django.conf import settings
    from django.db import transaction

    from lianxin.store.wake import stamp_registry

    homes = _homes_of(sender, instance)
    home = settings.LIANXIN_HOME
    # Once committed: a monitor woken before the commit would read the old rows.
    transaction.on_commit(lambda: stamp_registry(home, homes))


def _home_before(sender, instance=None, **kwargs):
    # A meter or resident moved to another home changes both homes: remember the one it left.
    household_id = getattr(instance, "household_id", None)
    if household_id is not None and instance.pk is not None:
        before = sender.objects.filter(pk=instance.pk).values_list("household_id", flat=True)
        instance._lianxin_household_before = before.first()


def _homes_of(sender, instance) -> list[str] | None:
    """The household codes a saved or deleted row belongs to, before and after the change (the
    monitor reads those homes again), or None when the change may touch any home (a
    transformer area: its code is every home's)."""
    if sender.__name__ == "Household":
        return [instance.code]
    household_id = getattr(instance, "household_id", None)
    if household_id is None:
        return None
    from lianxin.care.models import Household

    ids = {household_id, getattr(instance, "_lianxin_household_before", None)} - {None}
    codes = list(Household.objects.filter(pk__in=ids).values_list("code", flat=True))
    return codes if len(codes) == len(ids) else None
