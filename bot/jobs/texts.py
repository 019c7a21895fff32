"""What the nudge jobs say, provided by handlers/nudges.py (bot/jobs imports no handlers).

Plain values in, a `Reply` out, rendered with the member's own `Translator` when queued.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

from bot.core.i18n import Translator
from bot.core.messages import Reply


class NudgeTexts(Protocol):
    def reminder(self, t: Translator, points: int, expires_on: date) -> Reply:
        """Points expire soon: how many, and the first day some go."""
        ...

    def birthday(self, t: Translator, multiplier: int) -> Reply:
        """Happy birthday, and today's check-in counts `multiplier` times."""
        ...

    def dormant(
        self, t: Translator, balance: int, expiring: int, expires_on: date | None, streak: int
    ) -> Reply:
        """We miss you: the balance, what expires soon, the streak they had (0: none)."""
        ...

    def tier_down(self, t: Translator, old: str, new: str, earned: int, needed: int) -> Reply:
        """The yearly review moved the member down one tier, and why."""
        ...
