"""The one exception type that means "bad input": one line on stderr, exit 2."""


class ModelLimit(Exception):
    """The model met C it cannot evaluate (or a fault in it): an info finding, not a crash."""

    function: str | None = None
    line: int = 0


class InputError(Exception):
    """Raised for anything the user gave us that we cannot use.

    The message is printed as is, as a single line, so it must name the
    offending path, revision, patch or URL itself.
    """
