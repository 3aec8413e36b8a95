from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DataHealthConfig(AppConfig):
    name = "lianxin.datahealth"
    label = "datahealth"
    verbose_name = _("Data health")

    def ready(self):
        from lianxin.datahealth import service
        from lianxin.ingest.api.intake import batch_taken

        batch_taken.connect(service.count_batch, dispatch_uid="datahealth.count_batch")
