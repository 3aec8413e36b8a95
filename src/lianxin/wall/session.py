"""The wall role's session: a big display signed in once should not find itself on the sign-in
page at 3 a.m. Other roles keep the shift-long session of the settings (SESSION_COOKIE_AGE); a
wall session lasts WALL_SESSION_AGE from its last day of use, and every POST is refused."""

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.urls import Resolver404, resolve
from django.utils import timezone

from lianxin.care.roles import is_wall

# What a wall session may still post: signing out and choosing the language.
WALL_MAY_POST = {"logout", "set_language"}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def wall_age() -> int:
    return int(getattr(settings, "WALL_SESSION_AGE", 30 * 86400))


def long_wall_session(sender, request, user, **kwargs):
    if request is not None and is_wall(user):
        request.session.set_expiry(wall_age())
        request.session["wall_day"] = timezone.localdate().isoformat()


class WallReadOnlyMiddleware:
    """A wall session reads only: any POST (or other unsafe method) answers 403, whatever the
    view's own permission checks would say. Once a day its expiry is pushed forward (the
    session is saved only when changed, so polling alone would not renew it)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and is_wall(user):
            if request.method not in SAFE_METHODS:
                try:
                    name = resolve(request.path_info).url_name
                except Resolver404:
                    name = None
                if name not in WALL_MAY_POST:
                    raise PermissionDenied
            today = timezone.localdate().isoformat()
            if request.session.get("wall_day") != today:
                request.session.set_expiry(wall_age())
                request.session["wall_day"] = today
        return self.get_response(request)
