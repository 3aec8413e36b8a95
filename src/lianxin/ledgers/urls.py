from django.urls import path

from lianxin.care import converters  # noqa: F401  (registers <id:…>)
from lianxin.ledgers import field, orders, views

app_name = "ledgers"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("report.pdf", views.report_pdf, name="report"),
    path("import/", views.import_recipients, name="import"),
    path("import/template.xlsx", views.import_template, name="import_template"),
    path("attach/<str:owner>/<int:pk>", views.attach, name="attach"),
    path("attachments/<int:pk>", views.attachment, name="attachment"),
    # A work order's members, materials and photos: its team's, not only the ledger readers'.
    path("orders/<id:pk>/record", orders.record, name="order_record"),
    path("orders/<id:pk>/attach", orders.attach, name="order_attach"),
    path("orders/<id:pk>/attachments/<id:att>", orders.attachment, name="order_attachment"),
    # The team's phone forms.
    path("field/", field.home, name="field"),
    path("field/inspections/<id:pk>/", field.inspection, name="field_inspection"),
    path("field/defects/<id:pk>/repair", field.repair, name="field_repair"),
    path("field/campaigns/<id:pk>/day", field.campaign_day, name="field_campaign_day"),
    path("field/activities/new", field.activity, name="field_activity"),
    path("campaigns/", views.campaigns, name="campaigns"),
    path("campaigns/<int:pk>/", views.campaign, name="campaign"),
    path("<slug:slug>/", views.ledger, name="ledger"),
    path("<slug:slug>.<str:fmt>", views.export, name="export"),
]
