"""The exception types that cross module boundaries.

``cli.main`` is the one place that turns them into exit statuses:
:class:`InputError` (and subclasses) is "bad input", one line on stderr and
exit 2; :class:`Interrupted` is a signal, exit 128 + signal number; any
other exception is a bug in vpcheck, exit 3.
"""


class ModelLimit(Exception):
    """The model met C it cannot evaluate (or a fault in it): an info finding, not a crash."""

    function: str | None = None
    line: int = 0


class InputError(Exception):
    """Raised for anything the user gave us that we cannot use.

    The message is printed as is, as a single line, so it must name the
    offending path, revision, patch or URL itself.
    """


class LimitExceeded(InputError):
    """The input is larger than a limit in :mod:`analyzer.limits` allows."""

    def __init__(self, message: str, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP, raised so that every ``with``/``finally`` unwinds.

    A ``KeyboardInterrupt`` so that code which already lets Ctrl-C through
    lets these through too; temporary directories are removed on the way out.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
