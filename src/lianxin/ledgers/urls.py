from django.urls import path

from lianxin.ledgers import views

app_name = "ledgers"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("report.pdf", views.report_pdf, name="report"),
    path("import/", views.import_recipients, name="import"),
    path("import/template.xlsx", views.import_template, name="import_template"),
    path("attach/<str:owner>/<int:pk>", views.attach, name="attach"),
    path("attachments/<int:pk>", views.attachment, name="attachment"),
    path("campaigns/", views.campaigns, name="campaigns"),
    path("campaigns/<int:pk>/", views.campaign, name="campaign"),
    path("<slug:slug>/", views.ledger, name="ledger"),
    path("<slug:slug>.<str:fmt>", views.export, name="export"),
]
