from django.urls import path

from lianxin.ingest.api import views

app_name = "ingest_api"
urlpatterns = [
    path("v1/readings", views.readings, name="readings"),
    path("openapi.json", views.openapi, name="openapi"),
]
