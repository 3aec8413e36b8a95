from django.urls import path

from lianxin.notify import views

app_name = "notify"
urlpatterns = [
    # Short paths: they go into text messages.
    path("n/f/<str:token>", views.resident_fine, name="fine"),
    path("n/a/<str:token>", views.family_away, name="away"),
    path("n/v/<str:token>", views.voice_callback, name="voice"),
    path("shift/", views.shift, name="shift"),
    path("shift/case/<int:pk>.json", views.case_live, name="case_live"),
    path("shift/handover", views.handover, name="handover"),
    path("shift/silences", views.add_silence, name="add_silence"),
    path("shift/silences/<int:pk>/end", views.end_silence, name="end_silence"),
]
