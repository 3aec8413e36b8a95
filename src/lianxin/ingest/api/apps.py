from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IngestApiConfig(AppConfig):
    name = "lianxin.ingest.api"
    label = "ingest_api"
    verbose_name = _("Meter data push API")
