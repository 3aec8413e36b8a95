from django.urls import path

from lianxin.dispatch import views

app_name = "dispatch"
urlpatterns = [
    path("orders/", views.orders, name="orders"),
    path("orders/hotline", views.hotline, name="hotline"),
    path("orders/<int:pk>/", views.order, name="order"),
    path("orders/<int:pk>/arrived", views.arrived, name="arrived"),
    path("orders/<int:pk>/done", views.done, name="done"),
    path("orders/<int:pk>/cancel", views.cancel, name="cancel"),
    path("field/", views.field, name="field"),
    path("audit/", views.audit_log, name="audit"),
    path("export/care-recipients.csv", views.export_residents, name="export_residents"),
]
