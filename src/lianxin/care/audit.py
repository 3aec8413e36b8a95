"""Who looked at a resident's personal data. The audit log itself is kept by lianxin.dispatch
(its AuditEntry model); the apps below it announce a view through this signal, so they need not
import the app above them."""

from django.dispatch import Signal

# Sent with request, what (a short description) and household (or None).
personal_data_viewed = Signal()


def viewed(request, what: str, household=None) -> None:
    personal_data_viewed.send(sender=None, request=request, what=what, household=household)
