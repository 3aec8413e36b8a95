from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from lianxin.alerts import urls as alerts_urls
from lianxin.care import views as care_views
from lianxin.dispatch import urls as dispatch_urls
from lianxin.health import views as health_views
from lianxin.web import views

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("healthz", health_views.healthz, name="healthz"),
    path("health/", include("lianxin.health.urls")),
    # The queue and alert steps, plus the case page that dispatch composes on top of them.
    path(
        "alerts/",
        include((alerts_urls.urlpatterns + dispatch_urls.case_urlpatterns, alerts_urls.app_name)),
    ),
    path("dispatch/", include("lianxin.dispatch.urls")),
    path("ledgers/", include("lianxin.ledgers.urls")),
    path("api/", include("lianxin.ingest.api.urls")),
    path("data-health/", include("lianxin.datahealth.urls")),
    path("", include("lianxin.notify.urls")),
    path("", include("lianxin.wall.urls")),
    path("households/<str:code>/", care_views.household, name="household"),
    path("households/<str:code>/load.json", views.household_load, name="household_load"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]

handler403 = "lianxin.web.views.forbidden"
