"""Wake the notification worker of this process when outbox rows commit, so a notification
due now goes out at once instead of at the next poll. A worker in another process still
finds the rows by polling (every pass is one query on a partial index)."""

import threading

from django.db import transaction

_EVENT = threading.Event()


def soon() -> None:
    """Call inside the transaction that writes outbox rows: the worker wakes when it commits
    (at once when there is no transaction)."""
    transaction.on_commit(_EVENT.set)


def wait(timeout: float) -> bool:
    """Sleep until woken or `timeout` seconds; True when woken."""
    woken = _EVENT.wait(max(0.0, timeout))
    _EVENT.clear()
    return woken
