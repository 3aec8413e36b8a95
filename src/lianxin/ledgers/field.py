"""The team's phone forms: record an inspection (checklist, defects, repairs), a campaign day
and an activity, from a 390 px wide screen in the field.

Field members record for their own team (the permissions are in care.roles); the duty room's
team leads and admins for any team. A record of another team is refused (403).
"""

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from lianxin.alerts.models import TransitionError
from lianxin.care.forms import errors_text
from lianxin.care.models import Team
from lianxin.care.roles import require, sees_everything
from lianxin.ledgers import attachments, service
from lianxin.ledgers.forms import (
    ActivityForm,
    CampaignDayForm,
    InspectionForm,
    RepairForm,
    team_people,
)
from lianxin.ledgers.models import (
    Activity,
    Campaign,
    CampaignDay,
    Defect,
    Inspection,
    InspectionPlan,
)

RECORD = "ledgers.add_activity"
# How far ahead the list shows the inspections due.
AHEAD = timedelta(days=7)


def my_teams(user):
    if sees_everything(user):
        return Team.objects.order_by("name")
    return Team.objects.filter(membership__user=user).order_by("name")


def _check_team(user, team_id, extra=()):
    if sees_everything(user) or user.pk in extra:
        return
    if not Team.objects.filter(pk=team_id, membership__user=user).exists():
        raise PermissionDenied


def _attach(request, form, **owner):
    """The form's photo, if any, for the record just saved; a refused file is said, not lost
    silently (the record itself stands)."""
    photo = form.cleaned_data.get("photo")
    if not photo:
        return
    try:
        attachments.attach(request.user, photo, **owner)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))


@require(RECORD)
def home(request):
    """What the team has to record: inspections due, campaigns running; a new activity."""
    teams = my_teams(request.user)
    today = timezone.localdate()
    # The plans' inspections of the coming week exist once someone looks: nothing else has to
    # run for a recurring inspection to show up on the team's phones.
    for plan in InspectionPlan.objects.filter(team__in=teams, active=True):
        service.schedule_inspections(plan, today - AHEAD, today + AHEAD)
    due = (
        Inspection.objects.filter(team__in=teams, done_at__isnull=True, due_on__lte=today + AHEAD)
        .select_related("plan", "team")
        .order_by("due_on")[:50]
    )
    running = Campaign.objects.filter(
        team__in=teams, starts_on__lte=today, ends_on__gte=today - timedelta(days=1)
    ).order_by("starts_on")
    recent = Activity.objects.filter(team__in=teams).order_by("-on", "-pk")[:10]
    return render(
        request,
        "ledgers/field_home.html",
        {"due": due, "running": running, "recent": recent, "today": today},
    )


@require("ledgers.change_inspection", "ledgers.add_defect")
def inspection(request, pk):
    insp = get_object_or_404(Inspection.objects.select_related("plan", "team"), pk=pk)
    _check_team(request.user, insp.team_id)
    if insp.done_at is not None:
        defects = list(insp.defects.select_related("household", "repair_order"))
        return render(
            request,
            "ledgers/field_inspection.html",
            {"insp": insp, "done": True, "defects": defects, "crew": team_people([insp.team_id])},
        )
    form = InspectionForm(request.POST or None, request.FILES or None, inspection=insp)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            with transaction.atomic():
                service.finish_inspection(insp, d["members"], form.results(), d["note"])
                repairs = 0
                for text, home, assignee in d["defects"]:
                    defect = Defect.objects.create(
                        inspection=insp, description=text, household=home
                    )
                    if assignee is not None:
                        service.spawn_repair(request.user, defect, assignee)
                        repairs += 1
        except TransitionError as exc:
            form.add_error(None, " ".join(exc.messages))
        else:
            _attach(request, form, inspection=insp)
            messages.success(
                request,
                _("Inspection recorded: %(d)d defects, %(r)d repair orders sent.")
                % {"d": len(d["defects"]), "r": repairs},
            )
            return redirect("ledgers:field")
    status = 400 if request.method == "POST" else 200
    return render(
        request, "ledgers/field_inspection.html", {"insp": insp, "form": form}, status=status
    )


@require("ledgers.add_campaignday", "ledgers.change_campaignday")
def campaign_day(request, pk):
    c = get_object_or_404(Campaign.objects.select_related("team"), pk=pk)
    _check_team(request.user, c.team_id, set(c.members.values_list("pk", flat=True)))
    today = timezone.localdate()
    initial = {"day": min(max(today, c.starts_on), c.ends_on)}
    form = CampaignDayForm(request.POST or None, request.FILES or None, campaign=c, initial=initial)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        # One row per day: recording the day again corrects it.
        CampaignDay.objects.update_or_create(
            campaign=c,
            day=d["day"],
            defaults={
                "households_restored": d["households_restored"],
                "members_out": d["members_out"],
                "note": d["note"],
            },
        )
        _attach(request, form, campaign=c)
        messages.success(
            request,
            _("%(day)s recorded: %(n)d households restored.")
            % {"day": d["day"], "n": d["households_restored"]},
        )
        return redirect("ledgers:field")
    days = list(c.days_log.order_by("-day")[:14])
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "ledgers/field_campaign_day.html",
        {"c": c, "form": form, "days": days},
        status=status,
    )


@require(RECORD)
def activity(request):
    teams = my_teams(request.user)
    form = ActivityForm(
        request.POST or None,
        request.FILES or None,
        teams=teams,
        initial={"on": timezone.localdate()},
    )
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        with transaction.atomic():
            act = Activity.objects.create(
                kind=d["kind"],
                title=d["title"],
                team=d["team"],
                on=d["on"],
                place=d["place"],
                transformer_area=d["area"],
                beneficiaries=d["beneficiaries"],
                note=d["note"],
            )
            act.members.set(d["members"])
        _attach(request, form, activity=act)
        messages.success(request, _("Activity recorded: %(title)s.") % {"title": act.title})
        return redirect("ledgers:field")
    status = 400 if request.method == "POST" else 200
    return render(request, "ledgers/field_activity.html", {"form": form}, status=status)


@require_POST
@require("ledgers.change_inspection", "ledgers.add_defect")
def repair(request, pk):
    """Send a repair for a defect recorded without one: at its household, or at the inspected
    area when it has none (a cable, a box on the street)."""
    defect = get_object_or_404(Defect.objects.select_related("inspection"), pk=pk)
    insp = defect.inspection
    _check_team(request.user, insp.team_id)
    form = RepairForm(request.POST, team=insp.team_id)
    try:
        if not form.is_valid():
            raise TransitionError(errors_text(form))
        order = service.spawn_repair(request.user, defect, form.cleaned_data["assignee"])
    except TransitionError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Work order %(n)s sent.") % {"n": order.pk})
    return redirect("ledgers:field_inspection", pk=insp.pk)
