from django.urls import path

from lianxin.care import converters  # noqa: F401  (registers <id:…>)
from lianxin.dispatch import case_views, views

app_name = "dispatch"
urlpatterns = [
    path("orders/", views.orders, name="orders"),
    path("orders/hotline", views.hotline, name="hotline"),
    path("orders/<id:pk>/", views.order, name="order"),
    path("orders/<id:pk>/arrived", views.arrived, name="arrived"),
    path("orders/<id:pk>/done", views.done, name="done"),
    path("orders/<id:pk>/cancel", views.cancel, name="cancel"),
    path("orders/<id:pk>/reassign", views.reassign, name="reassign"),
    path("field/", views.field, name="field"),
    path("audit/", views.audit_log, name="audit"),
    path("export/care-recipients.csv", views.export_residents, name="export_residents"),
]

# The case page of an alert, with its calls and work orders: served under /alerts/ in the
# alerts namespace (URL names alerts:detail, alerts:call, alerts:dispatch).
case_urlpatterns = [
    path("<id:pk>/", case_views.detail, name="detail"),
    path("<id:pk>/call", case_views.call, name="call"),
    path("<id:pk>/dispatch", case_views.dispatch_order, name="dispatch"),
]
