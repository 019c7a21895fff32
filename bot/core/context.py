"""What a handler gets besides the message: services, the member, their language."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.core.clock import Clock
from bot.core.i18n import Translator
from bot.core.metrics import Metrics
from bot.settings import Rules, Settings
from storage.cache import Cache
from storage.db import Database
from storage.models import Member


@dataclass
class Services:
    settings: Settings
    rules: Rules
    db: Database
    cache: Cache
    clock: Clock
    metrics: Metrics = field(default_factory=Metrics)


@dataclass
class Context:
    services: Services
    locale: str
    t: Translator
    member: Member | None = None
    is_new: bool = False
    action: str = "help"

    @property
    def me(self) -> Member:
        """The member behind the message (set by the member middleware before any handler)."""
        assert self.member is not None, "member middleware did not run"
        return self.member
