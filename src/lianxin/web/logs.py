"""Logging filters for the server log."""

import logging


class RefusalWithoutTraceback(logging.Filter):
    """A 403 is a refusal working as designed: log its one line, not the traceback of the
    PermissionDenied that produced it (14 lines a time, which buried real errors)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            record.exc_info = None
            record.exc_text = None
        return True
