from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WallConfig(AppConfig):
    """The duty room's overview: the resident directory and search, the wall screen (大屏) with
    its read-only role, the offline map, and the case page's context (previous alerts, prepaid
    balance and payments)."""

    name = "lianxin.wall"
    verbose_name = _("Wall screen and map")

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from lianxin.wall.session import long_wall_session

        user_logged_in.connect(long_wall_session, dispatch_uid="lianxin.wall.session")
