from django.urls import path

from lianxin.health import views

app_name = "health"
urlpatterns = [
    path("banner.json", views.banner, name="banner"),
]
