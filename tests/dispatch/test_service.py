import pytest
from django.contrib.auth import get_user_model

from lianxin.alerts import service as alerts
from lianxin.alerts.models import Outcome, Status, TransitionError
from lianxin.care.service import visible_households
from lianxin.dispatch import service
from lianxin.dispatch.models import Call, WorkOrder
from tests.alerts.helpers import NOW, cared_home, finding, town

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    town()
    User = get_user_model()
    return {u.username: u for u in User.objects.all()}


def test_the_whole_case_is_on_the_alert_timeline(people):
    home = cared_home()
    op, field1 = people["operator"], people["field1"]
    [alert] = alerts.apply_findings([finding(home)], now=NOW)

    call = service.log_call(op, home, Call.Result.NO_ANSWER, "rang twice", alert=alert)
    alert.refresh_from_db()
    assert (alert.status, alert.holder) == (Status.ACKNOWLEDGED, op)
    order = service.dispatch(op, alert, field1, "check the supply")
    alert.refresh_from_db()
    assert alert.status == Status.DISPATCHED
    assert (order.team.name, order.source) == ("连心桥服务队", "alert")
    with pytest.raises(TransitionError):
        service.dispatch(op, alert, field1, "again")

    service.arrived(field1, order, "at the door")
    service.done(field1, order, Outcome.REAL_EMERGENCY, "called an ambulance", satisfaction=5)
    alert.refresh_from_db()
    order.refresh_from_db()
    assert (alert.status, alert.outcome) == (Status.RESOLVED, "real_emergency")
    assert (order.status, order.satisfaction) == ("done", 5)
    events = list(alert.events.values_list("action", "actor__username"))
    assert events == [
        ("opened", None),
        ("acknowledged", "operator"),
        ("call", "operator"),
        ("dispatched", "operator"),
        ("arrived", "field1"),
        ("work_done", "field1"),
        ("resolved", "field1"),
    ]
    assert alert.events.get(action="call").data["call"] == call.pk


def test_work_order_steps_go_in_order_and_satisfaction_is_1_to_5(people):
    home = cared_home()
    [alert] = alerts.apply_findings([finding(home)], now=NOW)
    order = service.dispatch(people["operator"], alert, people["field1"], "")
    assert order.request == alert.reason  # nothing typed: the alert's reason goes along
    with pytest.raises(TransitionError):
        service.done(people["field1"], order, Outcome.RESIDENT_FINE)
    service.arrived(people["field1"], order)
    with pytest.raises(TransitionError):
        service.done(people["field1"], order, Outcome.RESIDENT_FINE, satisfaction=6)
    with pytest.raises(TransitionError):
        service.done(people["field1"], order, "all good")
    service.done(people["field1"], order, Outcome.RESIDENT_FINE)
    with pytest.raises(TransitionError):
        service.arrived(people["field1"], order)


def test_cancelling_a_work_order_puts_the_alert_back_to_acknowledged(people):
    [alert] = alerts.apply_findings([finding(cared_home())], now=NOW)
    order = service.dispatch(people["operator"], alert, people["field1"], "go")
    service.cancel(people["operator"], order, "resident phoned back, fine")
    alert.refresh_from_db()
    assert alert.status == Status.ACKNOWLEDGED
    assert alert.events.last().action == "cancelled"


def test_a_hotline_request_opens_the_same_kind_of_work_order(people):
    home = cared_home()
    order = service.hotline_request(people["operator"], home, people["field2"], "kitchen light")
    assert (order.source, order.alert, order.status) == ("hotline", None, "assigned")
    service.arrived(people["field2"], order)
    service.done(people["field2"], order, Outcome.FAULT_REPAIRED, "new switch", 5)
    assert WorkOrder.objects.get().outcome == "fault_repaired"
    with pytest.raises(TransitionError):
        service.hotline_request(people["operator"], home, people["field2"], " ")
    with pytest.raises(TransitionError, match="admin"):
        service.hotline_request(people["operator"], home, people["admin"], "x")


def test_field_members_see_only_their_teams_orders_and_homes(people):
    own_home = cared_home("连心桥服务队")
    other_home = cared_home("湖滨服务队")
    mine = service.hotline_request(people["operator"], own_home, people["field1"], "a")
    theirs = service.hotline_request(people["operator"], other_home, people["field3"], "b")
    assert list(service.visible_work_orders(people["field1"])) == [mine]
    assert list(service.visible_work_orders(people["field3"])) == [theirs]
    assert set(service.visible_work_orders(people["operator"])) == {mine, theirs}
    homes = visible_households(people["field1"])
    assert own_home in homes and other_home not in homes
