import pytest

from lianxin.health import beats, checks
from lianxin.health.signals import system_alert_cleared, system_alert_raised


@pytest.fixture(autouse=True)
def fresh_caches():
    # Each test moves its own clock: nothing remembered from another test's arrivals.
    beats.forget_written()
    checks._area_cache.clear()
    checks._last_run[0] = 0.0  # the web process's throttle: this test's pages check afresh
    yield
    beats.forget_written()
    checks._area_cache.clear()


@pytest.fixture
def signals():
    """The system-alert signals as they are sent: [(raised|cleared, alert)]."""
    sent = []

    def raised(sender, alert, **kwargs):
        sent.append(("raised", alert))

    def cleared(sender, alert, **kwargs):
        sent.append(("cleared", alert))

    system_alert_raised.connect(raised)
    system_alert_cleared.connect(cleared)
    yield sent
    system_alert_raised.disconnect(raised)
    system_alert_cleared.disconnect(cleared)


@pytest.fixture(autouse=True)
def own_home(settings, tmp_path):
    # The readings store (and the concentrator check that reads it) of this test only.
    settings.LIANXIN_HOME = tmp_path
