"""What the evaluator raises when it has no answer: C outside the subset (at compile
time), a run-time fault of the evaluated C, a name nothing binds."""

from __future__ import annotations

from ...errors import ModelLimit


class Unsupported(ModelLimit):
    """C outside the subset, found at compile time: ``"for_statement at line 12"``."""

    def __init__(self, construct: str, line: int) -> None:
        super().__init__(f"{construct} at line {line}")
        self.construct, self.line = construct, line


class ModelError(ModelLimit):
    """A run-time fault of the evaluated C: division by zero, a bad shift count."""

    def __init__(self, message: str, function: str | None = None, line: int = 0) -> None:
        super().__init__(message)
        self.function, self.line = function, line


class Unbound(ModelLimit, KeyError):
    """A name the tree does not define and the configuration does not bind."""

    def __init__(self, name: str, function: str) -> None:
        super().__init__(f"{name} is neither defined in the tree nor bound by the model")
        self.name, self.function = name, function

    def __str__(self) -> str:
        return self.args[0]


__all__ = ["ModelError", "Unbound", "Unsupported"]
