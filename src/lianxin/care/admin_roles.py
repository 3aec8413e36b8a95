"""The role groups in the admin under their translated names ("duty operator", 值班员) instead
of their codes (duty_operator): the group list, the groups box of the user form and the user
list's groups filter."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.utils.translation import gettext_lazy as _

from lianxin.care.roles import Role


def role_label(group: Group) -> str:
    return str(Role(group.name).label) if group.name in Role.values else group.name


class RoleGroupAdmin(GroupAdmin):
    list_display = ["label", "name"]

    @admin.display(description=_("role"), ordering="name")
    def label(self, group):
        return role_label(group)


class RoleGroupFilter(admin.RelatedFieldListFilter):
    """The user list's "by group" filter, under the roles' translated names."""

    def field_choices(self, field, request, model_admin):
        return [(g.pk, role_label(g)) for g in Group.objects.order_by("name")]


class RoleUserAdmin(UserAdmin):
    list_filter = tuple(
        ("groups", RoleGroupFilter) if f == "groups" else f for f in UserAdmin.list_filter
    )

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.name == "groups" and field is not None:
            field.label_from_instance = role_label
        return field


User = get_user_model()
for model, model_admin in ((Group, RoleGroupAdmin), (User, RoleUserAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
