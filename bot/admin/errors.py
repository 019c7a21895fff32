"""Why an operator action was refused; the HTTP API and the CLI each say it their own way."""

from __future__ import annotations

from typing import Any


class AdminError(Exception):
    """An action refused; `extra` is what else the answer shows (e.g. the current balance)."""

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class Invalid(AdminError):
    """A value that can never be accepted; `field` names it."""

    def __init__(self, field: str, message: str, **extra: Any) -> None:
        super().__init__(message, field=field, **extra)
        self.field = field


class NotFound(AdminError):
    """Nothing by that name or number."""


class Conflict(AdminError):
    """Valid, but not now or not like this: the state of things refuses it."""
