"""The one exception type whose message is meant for the user."""


class MarinadeError(Exception):
    """A problem the user can fix; the CLI prints its message on one line and exits 1."""


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, turned into what Ctrl-C raises so that the same code saves and
    stops; `signal_name` says which, for the run's record and the exit status."""

    def __init__(self, signal_name: str, exit_code: int):
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.exit_code = exit_code
