"""Domain errors carry a translatable message; the error middleware turns them into replies."""

from __future__ import annotations


class DomainError(Exception):
    """A refusal the member should read, e.g. `DomainError(N_("Unknown code {code}."), code=c)`."""

    def __init__(self, message: str, **params: object) -> None:
        super().__init__(message)
        self.message = message
        self.params = params
