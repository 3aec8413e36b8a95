"""One base class for errors a user can act on: the CLI prints them as one line and exits 1."""


class LianxinError(Exception):
    """A failure with a message meant for a person, not a traceback."""
