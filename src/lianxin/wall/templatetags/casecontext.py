"""The case page's context for a home: its previous alerts and outcomes, and for a prepaid
alert the balance and payment history. Tags, so the case view itself needs no change:
`{% load casecontext %}{% previous_alerts alert %}{% prepaid_context alert %}`."""

from django import template

from lianxin.wall import service

register = template.Library()


@register.inclusion_tag("care/_previous_alerts.html")
def previous_alerts(alert, show_empty=True):
    if alert.household_id is None:  # a grid outage: its homes are listed on the page already
        return {"previous": [], "show_empty": False}
    return {"previous": list(service.previous_alerts(alert)), "show_empty": show_empty}


@register.inclusion_tag("wall/_prepaid.html")
def prepaid_context(alert):
    return {"prepaid": service.prepaid_context(alert)}
