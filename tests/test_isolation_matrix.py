"""Team isolation, as a matrix generated from the URL conf: every URL that takes a household code,
an alert, a work order or an away period (and every POST that names a household in its body) ×
every role and team → the expected answer.

A new view whose URL takes an object and has no row in MATRIX fails
`test_every_object_url_has_a_row`: whoever adds it must say who may open it.

Answers: "ok" (2xx, or a redirect that is not to the sign-in page: a POST action ran or said why
not), "login" (sent to sign in), 403, 404 (another team's object is as good as absent).
"""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from lianxin.alerts import service as alerts
from lianxin.alerts.models import Alert
from lianxin.care.models import Team
from lianxin.dispatch import service as dispatch
from lianxin.ledgers.attachments import attach
from lianxin.ledgers.models import Campaign, Defect, Inspection, InspectionPlan
from tests.alerts.helpers import cared_home, finding, town

pytestmark = pytest.mark.django_db

TEAM_A, TEAM_B = "连心桥服务队", "湖滨服务队"
# (user, team): anonymous; the three roles that see every team; field1 and field2 of team A
# (field1 is the assignee of team A's order), field3 of team B (the assignee of team B's order).
USERS = [None, "admin", "lead", "operator", "field1", "field2", "field3"]
TEAMS = {"field1": "A", "field2": "A", "field3": "B"}
EVERYONE = ("admin", "lead", "operator")

# URL name -> (method, what fills the URL (or the POST body), rule). A rule maps
# (user, whose object: "A" or "B") to the expected answer for signed-in users; anonymous visitors
# are always sent to sign in.


def duty_room_only(user, owner):
    return "ok" if user in EVERYONE else 403


def own_team(user, owner):
    # The roles that see everything, or a field member of the object's own team.
    return "ok" if user in EVERYONE or TEAMS[user] == owner else 404


def own_order_as_assignee(user, owner):
    # Steps of a work order: the duty room, or the assignee; a teammate who is not the assignee
    # is refused, another team's order is absent.
    if user in EVERYONE:
        return "ok"
    if TEAMS[user] != owner:
        return 404
    return "ok" if user in ("field1", "field3") else 403


def order_team(user, owner):
    # A work order's members, materials and photos: the duty room or anyone of the order's team
    # (not only the assignee: whoever went along adds the photos); another team's member 403.
    return "ok" if user in EVERYONE or TEAMS[user] == owner else 403


def team_records(user, owner):
    # The phone forms of a team's records: leads and admins for any team, a field member for
    # their own; operators have no part in them.
    if user in ("admin", "lead"):
        return "ok"
    return "ok" if user in TEAMS and TEAMS[user] == owner else 403


def leads_only(user, owner):
    # The ledgers are the team lead's and the admin's; everyone else is refused.
    return "ok" if user in ("admin", "lead") else 403


MATRIX = {
    "household": ("GET", "code", own_team),
    "household_load": ("GET", "code", own_team),
    "alerts:detail": ("GET", "alert", duty_room_only),
    "alerts:acknowledge": ("POST", "alert", duty_room_only),
    "alerts:call": ("POST", "alert", duty_room_only),
    "alerts:dispatch": ("POST", "alert", duty_room_only),
    "alerts:resolve": ("POST", "alert", duty_room_only),
    "alerts:note": ("POST", "alert", duty_room_only),
    "alerts:add_away": ("POST", "code", duty_room_only),
    "alerts:end_away": ("POST", "away", duty_room_only),
    "dispatch:order": ("GET", "order", own_team),
    "dispatch:arrived": ("POST", "order", own_order_as_assignee),
    "dispatch:done": ("POST", "order", own_order_as_assignee),
    # Cancelling is the duty room's decision, not the field's (it needs alerts.view_alert).
    "dispatch:cancel": ("POST", "order", duty_room_only),
    # So is sending someone else.
    "dispatch:reassign": ("POST", "order", duty_room_only),
    # Takes the household code in its body: field members cannot open work orders at all.
    "dispatch:hotline": ("POST", "body:code", duty_room_only),
    # The shift board: a case's live timeline, ending a maintenance silence of a home.
    "notify:case_live": ("GET", "alert", duty_room_only),
    "notify:end_silence": ("POST", "silence", duty_room_only),
    # The ledgers: a URL part that names a ledger, or a campaign and its attachment. A POST
    # without a file is refused with a message (a redirect): "ok" for who may attach.
    "ledgers:ledger": ("GET", lambda o: {"slug": "demand"}, leads_only),
    "ledgers:export": ("GET", lambda o: {"slug": "records", "fmt": "csv"}, leads_only),
    "ledgers:campaign": ("GET", "campaign", leads_only),
    "ledgers:attach": ("POST", lambda o: {"owner": "campaign", "pk": o["campaign"]}, leads_only),
    "ledgers:attachment": ("GET", "attachment", leads_only),
    "ledgers:field_inspection": ("GET", "inspection", team_records),
    "ledgers:field_campaign_day": ("GET", "campaign", team_records),
    "ledgers:field_repair": ("POST", "defect", team_records),
    "ledgers:order_record": ("POST", "order", order_team),
    "ledgers:order_attach": ("POST", "order", order_team),
    "ledgers:order_attachment": (
        "GET",
        lambda o: {"pk": o["order"], "att": o["order_attachment"]},
        order_team,
    ),
}
# Links sent by text message to a resident or their family: the signed token in the URL is the
# credential (no sign-in, no role); lianxin.notify's own tests cover forged and expired tokens.
TOKEN_LINKS = {"notify:fine", "notify:away", "notify:voice"}  # voice: the gateway's callback
# POST views that name an object in their body rather than their URL (the URL conf cannot tell).
BODY_TAKERS = {"dispatch:hotline"}
# Django's own admin checks is_staff and model permissions itself; not the teams' views.
OUTSIDE = {"admin"}


def object_urls() -> dict[str, str]:
    """name -> route of every URL pattern with a parameter, walked from the root URL conf."""
    found = {}

    def walk(patterns, prefix, namespace):
        for p in patterns:
            if isinstance(p, URLResolver):
                if p.namespace in OUTSIDE:
                    continue
                ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
                walk(p.url_patterns, prefix + str(p.pattern), ns)
            elif isinstance(p, URLPattern) and p.pattern.converters and p.name:
                found[f"{namespace}{p.name}"] = prefix + str(p.pattern)

    walk(get_resolver().url_patterns, "", "")
    return found


def test_every_object_url_has_a_row():
    urls = object_urls()
    missing = sorted(set(urls) - set(MATRIX) - TOKEN_LINKS)
    assert not missing, f"views taking an object with no row in MATRIX: {missing}"
    stale = sorted(set(MATRIX) - set(urls) - BODY_TAKERS)
    assert not stale, f"rows for views that are gone: {stale}"
    # The views the issue names are all there.
    assert {"household_load", "alerts:add_away", "alerts:end_away", "dispatch:done"} <= set(urls)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The demo town creates seven users; real PBKDF2 would cost seconds per test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def objects(settings, tmp_path):
    """One home, alert, work order, away period, campaign and attachment per team."""
    settings.LIANXIN_HOME = tmp_path  # the attachments are written there
    town()
    user = get_user_model().objects.get
    started = datetime.now(UTC) - timedelta(hours=1)
    out = {}
    for owner, team, assignee in (("A", TEAM_A, "field1"), ("B", TEAM_B, "field3")):
        home = cared_home(team)
        [alert] = alerts.apply_findings([finding(home, started=started)])
        order = dispatch.hotline_request(
            user(username="operator"), home, user(username=assignee), "x"
        )
        away = alerts.add_away_period(
            home,
            user(username="operator"),
            datetime.now(UTC) + timedelta(days=1),
            datetime.now(UTC) + timedelta(days=3),
            "with family",
        )
        from lianxin.notify.models import Silence

        silence = Silence.objects.create(
            household=home,
            ends_at=datetime.now(UTC) + timedelta(days=1),
            reason="meter swap",
            author=user(username="operator"),
        )
        campaign = Campaign.objects.create(
            name=f"campaign {owner}",
            team=Team.objects.get(name=team),
            starts_on=date(2026, 7, 20),
            ends_on=date(2026, 7, 27),
        )
        plan = InspectionPlan.objects.create(
            name=f"plan {owner}", team=campaign.team, checklist=["meter box"]
        )
        inspection = Inspection.objects.create(plan=plan, team=campaign.team, due_on=date.today())
        defect = Defect.objects.create(inspection=inspection, description="cable")
        photo = SimpleUploadedFile("p.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
        att = attach(user(username="lead"), photo, campaign=campaign)
        photo = SimpleUploadedFile("o.png", b"\x89PNG\r\n\x1a\n" + b"\1" * 32)
        order_att = attach(user(username=assignee), photo, work_order=order)
        out[owner] = {
            "code": home.code,
            "alert": alert.pk,
            "order": order.pk,
            "away": away.pk,
            "silence": silence.pk,
            "campaign": campaign.pk,
            "attachment": att.pk,
            "order_attachment": order_att.pk,
            "inspection": inspection.pk,
            "defect": defect.pk,
        }
    assert out["A"]["code"] != out["B"]["code"]
    return out


def answer(response) -> object:
    if response.status_code in (301, 302):
        return "login" if "/accounts/login/" in response["Location"] else "ok"
    if 200 <= response.status_code < 300:
        return "ok"
    return response.status_code


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_isolation(client, objects, name):
    method, fills, rule = MATRIX[name]
    wrong = []
    for username in USERS:
        client.logout()
        if username:
            client.force_login(get_user_model().objects.get(username=username))
        for owner in ("A", "B"):
            obj = objects[owner]
            body = {"note": "matrix", "household": obj["code"], "request": "matrix"}
            if callable(fills):
                url = reverse(name, kwargs=fills(obj))
            elif fills.startswith("body:"):
                url = reverse(name)
            else:
                kwarg = "code" if fills == "code" else "pk"
                url = reverse(name, kwargs={kwarg: obj[fills]})
            response = client.post(url, body) if method == "POST" else client.get(url)
            want = "login" if username is None else rule(username, owner)
            got = answer(response)
            if got != want:
                wrong.append(
                    f"{username or 'anonymous'} {method} {url} ({owner}): {got}, want {want}"
                )
    assert not wrong, "\n".join(wrong)


def test_an_alert_of_another_home_is_not_shown_through_the_chart(client, objects):
    # ?alert= names an alert; only the home's own alerts are marked on its chart.
    client.force_login(get_user_model().objects.get(username="field1"))
    a, b = objects["A"], objects["B"]
    data = client.get(f"/households/{a['code']}/load.json?alert={b['alert']}").json()
    # The home's own alerts in the window are marked (as earlier ones); the other home's never.
    assert not [m for m in data["marks"] if m["this"] or m.get("id") == b["alert"]]
    own = client.get(f"/households/{a['code']}/load.json?alert={a['alert']}").json()
    assert [m["label"] for m in own["marks"] if m["this"]] == [
        Alert.objects.get(pk=a["alert"]).get_kind_display()
    ]
    assert not [m for m in own["marks"] if m.get("id") == b["alert"]]
