from django.urls import path

from lianxin.alerts import views
from lianxin.care import converters  # noqa: F401  (registers <id:…>)

# The case page and its calls and work orders are in this namespace too (alerts:detail,
# alerts:call, alerts:dispatch) but are dispatch's views: lianxin.web.urls joins the two lists.
app_name = "alerts"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("queue.json", views.queue_fragment, name="queue_fragment"),
    path("<id:pk>/acknowledge", views.acknowledge, name="acknowledge"),
    path("<id:pk>/resolve", views.resolve, name="resolve"),
    path("<id:pk>/note", views.note, name="note"),
    path("close-cleared", views.close_cleared, name="close_cleared"),
    path("away/<str:code>", views.add_away, name="add_away"),
    path("away/<id:pk>/end", views.end_away, name="end_away"),
]
