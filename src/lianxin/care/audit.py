"""Who looked at a resident's personal data. The audit log itself is kept by lianxin.dispatch
(its AuditEntry model); the apps below it announce a view through this signal, so they need not
import the app above them."""

from django.dispatch import Signal

# Sent with request, entry (what was looked at: lianxin.dispatch.audit_codes), params (the
# code's values) and household (or None).
personal_data_viewed = Signal()


def viewed(request, entry: str, household=None, **params) -> None:
    personal_data_viewed.send(
        sender=None, request=request, entry=entry, household=household, params=params
    )
