from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render

from lianxin.care.models import CareRecipient, Household, TransformerArea


@login_required
def home(request):
    return render(
        request,
        "home.html",
        {
            "households": Household.objects.count(),
            "care_recipients": CareRecipient.objects.count(),
            "transformer_areas": TransformerArea.objects.count(),
        },
    )


def healthz(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
