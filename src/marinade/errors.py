"""The one exception type whose message is meant for the user."""


class MarinadeError(Exception):
    """A problem the user can fix; the CLI prints its message on one line and exits 1."""
