"""The four roles, as Django groups with their permissions, and the check every page makes.

Later stages (alerts, dispatch, ledgers) add their own permissions to ROLE_PERMISSIONS; the
groups are rebuilt after every migrate, so a deployment always matches this table.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import TextChoices
from django.utils.translation import gettext_lazy as _


class Role(TextChoices):
    ADMIN = "admin", _("administrator")
    TEAM_LEAD = "team_lead", _("team lead")
    DUTY_OPERATOR = "duty_operator", _("duty operator")
    FIELD_MEMBER = "field_member", _("field member")
    # The duty room's big display: sees the queue's figures and the map, acts on nothing.
    WALL = "wall", _("wall screen")


_CARE_MODELS = [
    "feeder",
    "transformerarea",
    "household",
    "meter",
    "carerecipient",
    "consent",
    "emergencycontact",
    "team",
    "membership",
]


def _all(app: str, models: list[str]) -> list[str]:
    return [f"{app}.{action}_{m}" for m in models for action in ("view", "add", "change", "delete")]


def _view(app: str, models: list[str]) -> list[str]:
    return [f"{app}.view_{m}" for m in models]


_ALERT_MODELS = ["alert", "alertevent", "awayperiod"]
_DISPATCH_MODELS = ["call", "workorder"]
_LEDGER_MODELS = [
    "orderdetail",
    "inspectionplan",
    "inspection",
    "defect",
    "campaign",
    "campaignday",
    "activity",
    "attachment",
]
_NOTIFY_MODELS = ["channel", "escalationpolicy", "escalationstep", "personpreference", "silence"]

# "app_label.codename" for each role. Admins also get every permission there is (the audit log
# included: dispatch.view_auditentry is granted to admins only).
ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.ADMIN: [],
    Role.TEAM_LEAD: _all("care", _CARE_MODELS)
    + _all("alerts", _ALERT_MODELS)
    + _all("dispatch", _DISPATCH_MODELS)
    + ["dispatch.export_personal_data"]
    + _all("ledgers", _LEDGER_MODELS)
    + ["ledgers.view_ledgers"]
    + _all("notify", _NOTIFY_MODELS)
    + ["notify.view_notification", "notify.add_handovernote"],
    Role.DUTY_OPERATOR: _view("care", _CARE_MODELS)
    + ["care.change_carerecipient", "care.add_emergencycontact", "care.change_emergencycontact"]
    + _view("alerts", _ALERT_MODELS)
    + ["alerts.change_alert", "alerts.add_awayperiod", "alerts.change_awayperiod"]
    + _view("dispatch", _DISPATCH_MODELS)
    + ["dispatch.add_call", "dispatch.add_workorder", "dispatch.change_workorder"]
    + ["notify.view_silence", "notify.add_silence", "notify.change_silence"]
    + ["notify.view_notification", "notify.add_handovernote"],
    # Field members work their own team's orders; the alert queue is not theirs.
    Role.FIELD_MEMBER: _view("care", ["household", "meter", "carerecipient", "emergencycontact"])
    + ["dispatch.view_workorder", "dispatch.change_workorder", "dispatch.add_call"]
    # The phone forms of their own team's records (lianxin.ledgers.field); not the ledgers.
    + ["ledgers.change_inspection", "ledgers.add_defect", "ledgers.add_activity"]
    + ["ledgers.add_campaignday", "ledgers.change_campaignday"],
    # View rights only; lianxin.wall also refuses every POST of a wall session (403).
    Role.WALL: _view("care", ["household", "transformerarea"])
    + _view("alerts", ["alert"])
    + _view("dispatch", ["workorder"]),
}


def ensure_role_groups(sender=None, using="default", **kwargs):
    from django.contrib.auth.models import Group, Permission

    for role, perms in ROLE_PERMISSIONS.items():
        group, _created = Group.objects.using(using).get_or_create(name=role)
        if role == Role.ADMIN:
            wanted = list(Permission.objects.using(using).all())
        else:
            wanted = []
            for dotted in perms:
                app_label, codename = dotted.split(".", 1)
                perm = (
                    Permission.objects.using(using)
                    .filter(content_type__app_label=app_label, codename=codename)
                    .first()
                )
                if perm is not None:  # an app not migrated yet gets its turn on its own migrate
                    wanted.append(perm)
        group.permissions.set(wanted)


def user_roles(user) -> set[str]:
    if not user.is_authenticated:
        return set()
    return set(user.groups.values_list("name", flat=True))


def has_role(user, *roles: str) -> bool:
    return user.is_superuser or bool(user_roles(user) & set(roles))


def is_wall(user) -> bool:
    """A wall-screen session: read-only, whatever else the account was given."""
    return user.is_authenticated and not user.is_superuser and Role.WALL in user_roles(user)


def sees_everything(user) -> bool:
    """The duty room (operators, leads, admins) sees every home; a field member only their
    team's."""
    return has_role(user, Role.ADMIN, Role.TEAM_LEAD, Role.DUTY_OPERATOR)


def require(*perms: str):
    """Sign-in and permission check for a view: anonymous users are sent to sign in, signed-in
    users without every permission in `perms` get 403."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(request, *args, **kwargs):
            if not request.user.has_perms(perms):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
