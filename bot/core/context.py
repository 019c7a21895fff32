"""What a handler gets besides the message: services, the member, their language."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.core.clock import Clock
from bot.core.i18n import Translator, pick_locale
from bot.core.metrics import Metrics
from bot.core.ports import Senders
from bot.core.pushes import Pushes
from bot.settings import Rules, Settings
from storage.cache import Cache
from storage.db import Database
from storage.models import Member

if TYPE_CHECKING:
    from bot.core.router import Vocabulary


@dataclass
class Services:
    """Everything long-lived the core works with, built once by the composition root."""

    settings: Settings
    rules: Rules
    db: Database
    cache: Cache
    clock: Clock
    metrics: Metrics = field(default_factory=Metrics)
    senders: Senders = field(default_factory=Senders)
    pushes: Pushes = field(init=False)

    def __post_init__(self) -> None:
        self.pushes = Pushes(self)


@dataclass
class Context:
    services: Services
    locale: str
    t: Translator
    member: Member | None = None
    is_new: bool = False
    action: str = "help"
    vocabulary: Vocabulary | None = None  # every action and its words (help, menus)
    # `member` is what this process last found for the account, not looked up for this
    # message: possibly stale (see bot.core.middleware.member_lookup)
    known_member: bool = False
    # Whether pushes wait, held, for the sender's chat, when the handler's own statement said
    # (the check-in's); None: bot.core.middleware.held_pushes asks the cache
    pushes_held: bool | None = None

    @property
    def words(self) -> Vocabulary:
        assert self.vocabulary is not None, "the dispatcher sets the vocabulary"
        return self.vocabulary

    def speak(self, chosen_by_member: str | None, app_hint: str | None) -> None:
        """Answer in the member's chosen language, else their app's, else the deployment's."""
        chosen = pick_locale(chosen_by_member, app_hint, self.services.settings.default_locale)
        if chosen != self.locale:
            self.locale, self.t = chosen, Translator(chosen)

    @property
    def me(self) -> Member:
        """The member behind the message (set by the member middleware before any handler)."""
        assert self.member is not None, "member middleware did not run"
        return self.member
