"""Pages without an account (the resident's "I am fine", the family's "she is with us") and the
duty room's shift page and maintenance silences.

The public pages change nothing on GET (an SMS app's link preview must not spend the link);
a refused link (forged, expired, used) gets a clear page and changes nothing.
"""

import json
import time as time_module
from datetime import datetime, time, timedelta

from django.contrib import messages as flash
from django.db.models import Q
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from lianxin.alerts.models import ACTIVE, Alert, Status, TransitionError
from lianxin.care.forms import errors_text
from lianxin.care.models import Household, TransformerArea
from lianxin.care.roles import require
from lianxin.notify import service
from lianxin.notify.forms import FamilyNoteForm, HandoverForm, SilenceForm
from lianxin.notify.models import (
    HandoverNote,
    Notification,
    OneTimeLink,
    PersonPreference,
    RosterShift,
    Silence,
)

AWAY_MAX_DAYS = 60
REFUSED_STATUS = {"forged": 404, "expired": 410, "used": 410}


def _language_for(signed: str, purpose: str) -> str:
    """The recipient's language, found from the link without trusting it for anything else."""
    try:
        token = service._SIGNER.unsign(signed)
    except Exception:  # noqa: BLE001 - a forged link is answered in the default language
        return "zh-hans"
    link = OneTimeLink.objects.filter(digest=OneTimeLink.hash(token)).first()
    if link is None:
        return "zh-hans"
    pref = PersonPreference.objects.filter(care_recipient__household_id=link.household_id).first()
    if pref is None:
        return "zh-hans"
    return pref.resident_language if purpose == "fine" else pref.family_language


def _refused(request, why: str):
    return render(request, "notify/link_refused.html", {"why": why}, status=REFUSED_STATUS[why])


@require_http_methods(["GET", "POST"])
def resident_fine(request, token: str):
    with translation.override(request.GET.get("lang") or _language_for(token, "fine")):
        try:
            if request.method == "POST":
                service.confirm_fine(token)
                return render(request, "notify/fine_done.html")
            service.check_link(token, OneTimeLink.Purpose.FINE)
        except service.LinkRefused as refused:
            return _refused(request, refused.why)
        return render(request, "notify/fine.html")


def _next_sunday(today):
    return today + timedelta(days=(6 - today.weekday()) or 7)


@require_http_methods(["GET", "POST"])
def family_away(request, token: str):
    with translation.override(request.GET.get("lang") or _language_for(token, "away")):
        today = timezone.localdate()
        ctx = {
            "until": _next_sunday(today).isoformat(),
            "today": today.isoformat(),
            "max": (today + timedelta(days=AWAY_MAX_DAYS)).isoformat(),
        }
        try:
            service.check_link(token, OneTimeLink.Purpose.AWAY)
            if request.method == "POST":
                raw = request.POST.get("until", "").strip()
                day = parse_date(raw) if len(raw) == 10 else None
                if day is None or not today <= day <= today + timedelta(days=AWAY_MAX_DAYS):
                    ctx["error"] = _(
                        "Choose the date she comes home, from today up to %(n)s days ahead."
                    ) % {"n": AWAY_MAX_DAYS}
                    ctx["until"] = raw
                    return render(request, "notify/away.html", ctx, status=400)
                until = timezone.make_aware(datetime.combine(day, time(23, 59)))
                note = FamilyNoteForm(request.POST)
                if not note.is_valid():
                    ctx["error"] = errors_text(note)
                    return render(request, "notify/away.html", ctx, status=400)
                away = service.set_away_by_family(token, until, note.cleaned_data["note"])
                return render(request, "notify/away_done.html", {"away": away})
        except service.LinkRefused as refused:
            return _refused(request, refused.why)
        except TransitionError as exc:
            ctx["error"] = " ".join(exc.messages)
            return render(request, "notify/away.html", ctx, status=400)
        return render(request, "notify/away.html", ctx)


# --- voice-call callbacks ------------------------------------------------------------------

CALLBACK_MAX_AGE = 300  # seconds, as the webhook scheme asks of receivers


@csrf_exempt
@require_POST
def voice_callback(request, token: str):
    """The voice gateway reports the key pressed on a call (channels/gateway.py). The signed,
    single-use token in the URL names the call; a channel with a secret also signs the body."""
    import hmac

    from lianxin.notify.channels.webhook import sign

    try:
        link = service.check_link(token, (OneTimeLink.Purpose.VOICE, OneTimeLink.Purpose.ACK))
    except service.LinkRefused as refused:
        return JsonResponse({"error": refused.why}, status=REFUSED_STATUS[refused.why])
    secret = link.channel.secret if link.channel_id else ""
    if secret:
        ts = request.headers.get("X-Lianxin-Timestamp", "")
        given = request.headers.get("X-Lianxin-Signature", "")
        fresh = ts.isdigit() and abs(time_module.time() - int(ts)) <= CALLBACK_MAX_AGE
        if not fresh or not hmac.compare_digest(given, sign(secret, ts, request.body)):
            return JsonResponse({"error": "bad signature"}, status=403)
    digits = ""
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return JsonResponse({"error": "body is not JSON"}, status=400)
        if isinstance(body, dict):
            digits = body.get("digits") or body.get("Digits") or ""
    else:
        digits = request.POST.get("digits") or request.POST.get("Digits") or ""
    if not isinstance(digits, str | int) or isinstance(digits, bool):
        return JsonResponse({"error": "digits must be text"}, status=400)
    try:
        result = service.voice_answer(token, str(digits))
    except service.LinkRefused as refused:
        return JsonResponse({"error": refused.why}, status=REFUSED_STATUS[refused.why])
    return JsonResponse({"result": result})


# --- the duty room ------------------------------------------------------------------------

SHIFT_HOURS = 8


@require("alerts.view_alert")
def shift(request):
    """For the operator coming on duty: what is open and who holds it, what the last shift saw,
    notifications that failed, the outgoing operator's note."""
    now = timezone.now()
    since = now - timedelta(hours=SHIFT_HOURS)
    ctx = {
        "since": since,
        "now": now,
        "open": Alert.objects.filter(status__in=ACTIVE)
        .select_related("household", "transformer_area", "holder")
        .order_by("-severity_rank", "started_at"),
        "raised": Alert.objects.filter(opened_at__gte=since)
        .select_related("household", "transformer_area")
        .order_by("-opened_at")[:100],
        "resolved": Alert.objects.filter(status=Status.RESOLVED, resolved_at__gte=since)
        .select_related("household", "transformer_area", "holder")
        .order_by("-resolved_at")[:100],
        "failed": Notification.objects.filter(
            Q(status=Notification.Status.FAILED)
            | Q(status=Notification.Status.PENDING, attempts__gt=0),
            created_at__gte=since,
        ).select_related("channel", "alert")[:100],
        "unanswered": Alert.objects.filter(
            status__in=ACTIVE, escalation__resident_unanswered=True
        ).select_related("household"),
        "notes": HandoverNote.objects.select_related("author")[:5],
        # The roster: who is on duty now and the next shifts (edited in the admin).
        "roster": RosterShift.objects.filter(ends_at__gt=now)
        .select_related("user", "team")
        .order_by("starts_at")[:12],
        "silences": service.active_silences(now).select_related(
            "transformer_area", "household", "author"
        ),
        "areas": TransformerArea.objects.all(),
        "kinds": Alert._meta.get_field("kind").choices,
    }
    return render(request, "notify/shift.html", ctx)


@require_POST
@require("alerts.view_alert")
def handover(request):
    form = HandoverForm(request.POST)
    if not form.is_valid():
        flash.error(request, errors_text(form))
    else:
        HandoverNote.objects.create(author=request.user, text=form.cleaned_data["text"])
        flash.success(request, _("Handover note saved."))
    return redirect("notify:shift")


@require_POST
@require("notify.add_silence")
def add_silence(request):
    form = SilenceForm(request.POST)
    if not form.is_valid():
        flash.error(request, errors_text(form))
        return redirect("notify:shift")
    data = form.cleaned_data
    area = TransformerArea.objects.filter(code=data["area"]).first() if data["area"] else None
    home = Household.objects.filter(code=data["household"]).first() if data["household"] else None
    kind = data["kind"]
    hours = data["hours"] or 0
    reason = data["reason"]
    if data["household"] and home is None:
        flash.error(request, _("No household %(code)s.") % {"code": data["household"]})
    elif not (area or home or kind):
        flash.error(request, _("Choose a transformer area, a household or a kind."))
    elif not 0 < hours <= 24 * 14:
        flash.error(request, _("Give the length in hours, up to two weeks."))
    elif not reason:
        flash.error(request, _("Say why (e.g. line works on the feeder)."))
    else:
        now = timezone.now()
        Silence.objects.create(
            transformer_area=area,
            household=home,
            kind=kind,
            starts_at=now,
            ends_at=now + timedelta(hours=hours),
            reason=reason,
            author=request.user,
        )
        flash.success(request, _("Silence saved."))
    return redirect("notify:shift")


@require_POST
@require("notify.change_silence")
def end_silence(request, pk: int):
    now = timezone.now()
    Silence.objects.filter(pk=pk, ends_at__gt=now).update(ends_at=now)
    return redirect("notify:shift")


@require("alerts.view_alert")
def case_live(request, pk: int):
    """What the case page polls: its timeline and status (no audit entry: the page view that
    showed the resident's data was audited already)."""
    from django.http import JsonResponse
    from django.shortcuts import get_object_or_404
    from django.template.loader import render_to_string

    from lianxin.alerts.models import Outcome
    from lianxin.dispatch.models import Call

    alert = get_object_or_404(Alert, pk=pk)
    html = render_to_string(
        "alerts/_timeline.html",
        {
            "events": alert.events.select_related("actor"),
            "outcomes": Outcome.choices,
            "call_results": Call.Result.choices,
        },
        request=request,
    )
    return JsonResponse(
        {
            "status": alert.status,
            "status_label": alert.get_status_display(),
            "html": html,
            "events": alert.events.count(),
        }
    )
