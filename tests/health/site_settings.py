"""Settings of the processes the browser test starts: Lianxin's own, plus the loopback app."""

from lianxin.web.settings import *  # noqa: F403
from lianxin.web.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.health.loopback.apps.LoopbackConfig"]
