"""Response headers for pages that show personal data; the login throttle's backend."""

from axes.backends import AxesStandaloneBackend
from django.utils.cache import add_never_cache_headers


class NoStoreMiddleware:
    """Cache-Control: no-store on every page the app renders (static files are served before
    this by WhiteNoise, with their own long cache): a care recipient's page, an export or an
    API answer must not be kept by a browser or a proxy on a shared duty-room machine."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not response.has_header("Cache-Control"):
            add_never_cache_headers(response)
        return response


class LoginThrottleBackend(AxesStandaloneBackend):
    """django-axes' check, for sign-ins that come with a request (the web form, the admin). An
    authenticate() call without one (a script, a management command, the test client's login)
    has no address to throttle and goes straight to the password check."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
