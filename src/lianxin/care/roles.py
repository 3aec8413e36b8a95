"""The four roles, as Django groups with their permissions.

Later stages (alerts, dispatch, ledgers) add their own permissions to ROLE_PERMISSIONS; the
groups are rebuilt after every migrate, so a deployment always matches this table.
"""

from django.db.models import TextChoices
from django.utils.translation import gettext_lazy as _


class Role(TextChoices):
    ADMIN = "admin", _("administrator")
    TEAM_LEAD = "team_lead", _("team lead")
    DUTY_OPERATOR = "duty_operator", _("duty operator")
    FIELD_MEMBER = "field_member", _("field member")


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


# "app_label.codename" for each role. Admins also get every permission there is.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.ADMIN: [],
    Role.TEAM_LEAD: _all("care", _CARE_MODELS),
    Role.DUTY_OPERATOR: _view("care", _CARE_MODELS)
    + ["care.change_carerecipient", "care.add_emergencycontact", "care.change_emergencycontact"],
    Role.FIELD_MEMBER: _view("care", ["household", "meter", "carerecipient", "emergencycontact"]),
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
