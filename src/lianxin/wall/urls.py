from django.urls import path

from lianxin.wall import views

app_name = "wall"
urlpatterns = [
    path("residents/", views.directory, name="directory"),
    path("wall/", views.wall, name="screen"),
    path("wall/data.json", views.wall_data, name="data"),
    path("map/", views.map_page, name="map"),
    path("map/data.json", views.map_data, name="map_data"),
]
