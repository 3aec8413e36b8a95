from django.urls import path

from lianxin.datahealth import views

app_name = "datahealth"
urlpatterns = [
    path("", views.health, name="health"),
    path("rejections/", views.rejections, name="rejections"),
]
