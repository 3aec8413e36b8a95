from django.urls import path

from lianxin.alerts import views

app_name = "alerts"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("queue.json", views.queue_fragment, name="queue_fragment"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/acknowledge", views.acknowledge, name="acknowledge"),
    path("<int:pk>/call", views.call, name="call"),
    path("<int:pk>/dispatch", views.dispatch_order, name="dispatch"),
    path("<int:pk>/resolve", views.resolve, name="resolve"),
    path("<int:pk>/note", views.note, name="note"),
    path("away/<str:code>", views.add_away, name="add_away"),
    path("away/<int:pk>/end", views.end_away, name="end_away"),
]
