"""Steps on the team's own records: inspections and their defects, campaigns, activities."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from lianxin.alerts.models import TransitionError
from lianxin.care.models import CareRecipient, Household
from lianxin.dispatch.models import WorkOrder
from lianxin.dispatch.service import team_of
from lianxin.ledgers.models import Activity, Campaign, Defect, Inspection, InspectionPlan


def schedule_inspections(plan: InspectionPlan, start, end) -> list[Inspection]:
    """Create the plan's inspections due in [start, end) that do not exist yet."""
    have = set(
        plan.inspections.filter(due_on__gte=start, due_on__lt=end).values_list("due_on", flat=True)
    )
    new = [
        Inspection(plan=plan, team=plan.team, due_on=day)
        for day in plan.due_dates(start, end)
        if day not in have
    ]
    if not new:
        return []
    # Two phones opening the list at once both schedule: the unique (plan, due_on) keeps one,
    # and the rows are read back for their ids (an ignored conflict leaves none on the object).
    Inspection.objects.bulk_create(new, ignore_conflicts=True)
    return list(plan.inspections.filter(due_on__in=[i.due_on for i in new]).order_by("due_on"))


def finish_inspection(inspection: Inspection, members, results: list[dict], note="", at=None):
    """Record the checklist; every item of the plan's checklist needs an answer."""
    items = list(inspection.plan.checklist)
    answered = {r.get("item") for r in results}
    missing = [i for i in items if i not in answered]
    if missing:
        raise TransitionError(
            _("The checklist is not complete: %(items)s") % {"items": ", ".join(missing)}
        )
    at = at or timezone.now()
    inspection.started_at = inspection.started_at or at
    inspection.done_at = at
    inspection.results = [
        {"item": r["item"], "ok": bool(r.get("ok")), "note": str(r.get("note", ""))}
        for r in results
    ]
    inspection.note = note.strip()
    inspection.save()
    inspection.members.set(members)
    return inspection


def spawn_repair(user, defect: Defect, assignee, household: Household | None = None) -> WorkOrder:
    """A defect becomes a repair work order: at the home where it was found, or, for a defect
    of the area itself (a cable, a meter box on the street), at the inspected area."""
    home = household or defect.household
    if defect.repair_order_id is not None:
        raise TransitionError(_("A repair work order is already out for this defect."))
    plan = defect.inspection.plan
    area = None if home else plan.transformer_area
    place = ""
    if home is None:
        place = (area.name if area else "") or plan.community or plan.name
    with transaction.atomic():
        order = WorkOrder.objects.create(
            source=WorkOrder.Source.INSPECTION,
            household=home,
            transformer_area=area,
            place=place,
            request=defect.description,
            team=team_of(assignee),
            assignee=assignee,
            created_by=user,
        )
        defect.household = home
        defect.repair_order = order
        defect.save(update_fields=["household", "repair_order"])
    return order


def campaign_order(user, campaign: Campaign, household: Household, assignee, request: str):
    if not request.strip():
        raise TransitionError(_("Say what is to be done."))
    with transaction.atomic():
        order = WorkOrder.objects.create(
            source=WorkOrder.Source.CAMPAIGN,
            household=household,
            request=request.strip(),
            team=team_of(assignee),
            assignee=assignee,
            created_by=user,
        )
        campaign.work_orders.add(order)
    return order


def name_beneficiary(activity: Activity, person: CareRecipient):
    """Name a person among an activity's beneficiaries: only with their consent."""
    if not person.active_consents().exists():
        raise TransitionError(
            _("%(name)s has no consent on record: count them, but do not name them.")
            % {"name": person.name}
        )
    activity.people.add(person)


def named_people(activity: Activity) -> list[CareRecipient]:
    """Who may be named now: a person who withdrew consent since is counted, not named."""
    return [p for p in activity.people.all() if p.has_consent]


def campaign_figures(campaign: Campaign) -> dict:
    days = list(campaign.days_log.order_by("day"))
    members = campaign.members.count() + campaign.other_members
    return {
        "days": campaign.days,
        "members": members,
        "households_restored": sum(d.households_restored for d in days),
        "daily": [(d.day, d.households_restored, d.members_out) for d in days],
        "work_orders": campaign.work_orders.count(),
        "work_orders_done": campaign.work_orders.filter(status=WorkOrder.Status.DONE).count(),
    }
