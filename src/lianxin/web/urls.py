from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from lianxin.web import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("alerts/", include("lianxin.alerts.urls")),
    path("dispatch/", include("lianxin.dispatch.urls")),
    path("ledgers/", include("lianxin.ledgers.urls")),
    path("api/", include("lianxin.ingest.api.urls")),
    path("households/<str:code>/", views.household, name="household"),
    path("households/<str:code>/load.json", views.household_load, name="household_load"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]

handler403 = "lianxin.web.views.forbidden"
