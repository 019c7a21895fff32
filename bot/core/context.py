"""What a handler gets besides the message: services, the member, their language."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.core.clock import Clock
from bot.core.i18n import Translator
from bot.core.metrics import Metrics
from bot.core.outreach import Outreach
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
    outreach: Outreach = field(init=False)

    def __post_init__(self) -> None:
        self.outreach = Outreach(self.db, self.settings.default_locale)


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
