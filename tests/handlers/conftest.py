"""Fixtures for behaviour tests through the console door: state probes, catalogs, limits."""

from __future__ import annotations

import gettext
from dataclasses import dataclass
from datetime import date

import pytest
from sqlalchemy import select

from bot.app import Core
from bot.channels.console import ConsoleChat
from bot.core import i18n
from storage import ledger, members
from storage.models import Checkin, Identity, LedgerEntry, Member
from tests.conftest import HELP_TEXT

UNKNOWN_REPLY = "Sorry, I didn't understand that.\n\n" + HELP_TEXT


@dataclass(frozen=True)
class Entry:
    kind: str
    amount: int
    reason: str


@dataclass(frozen=True)
class Day:
    day: date
    streak: int
    points: int


class Probe:
    """Reads (and, for arranging, sets) what storage holds for a chat's member."""

    def __init__(self, core: Core) -> None:
        self.core = core

    async def member(self, who: ConsoleChat) -> Member:
        """The member behind a chat, created on first contact like any message would."""
        found, _ = await members.get_or_create(
            self.core.services.db, who.channel, who.name, self.core.services.clock.now()
        )
        return found

    async def balance(self, who: ConsoleChat) -> int:
        """The cached balance, checked against the sum of the ledger entries."""
        member_id = (await self.member(who)).id
        async with self.core.services.db.sessions() as session:
            cached = await ledger.balance_of(session, member_id)
            assert cached == await ledger.ledger_sum(session, member_id)
        return cached

    async def entries(self, who: ConsoleChat) -> list[Entry]:
        """Ledger entries, oldest first."""
        member_id = (await self.member(who)).id
        async with self.core.services.db.sessions() as session:
            rows = await session.execute(
                select(LedgerEntry.kind, LedgerEntry.amount, LedgerEntry.reason)
                .where(LedgerEntry.member_id == member_id)
                .order_by(LedgerEntry.id)
            )
            return [Entry(*row) for row in rows.all()]

    async def checkins(self, who: ConsoleChat) -> list[Day]:
        member_id = (await self.member(who)).id
        async with self.core.services.db.sessions() as session:
            rows = await session.execute(
                select(Checkin.day, Checkin.streak, Checkin.points)
                .where(Checkin.member_id == member_id)
                .order_by(Checkin.day)
            )
            return [Day(*row) for row in rows.all()]

    async def identities(self, who: ConsoleChat) -> set[tuple[str, str]]:
        member_id = (await self.member(who)).id
        async with self.core.services.db.sessions() as session:
            rows = await session.execute(
                select(Identity.channel, Identity.external_id).where(
                    Identity.member_id == member_id
                )
            )
            return {(channel, external) for channel, external in rows.all()}

    async def set_growth(self, who: ConsoleChat, growth: int, tier: str) -> None:
        """Arrange a member's growth and tier directly (as purchases would have)."""
        found = await self.member(who)
        async with self.core.services.db.transaction() as session:
            await members.add_growth(session, found.id, growth - found.growth)
            await members.set_tier(session, found.id, tier)


@pytest.fixture
def probe(core: Core) -> Probe:
    return Probe(core)


@pytest.fixture
def no_flood_limit(core: Core) -> None:
    """Lift the per-minute limit for tests that send a burst on purpose."""
    rules = core.services.rules
    core.services.rules = rules.model_copy(
        update={"limits": rules.limits.model_copy(update={"flood_per_minute": 10_000})}
    )


class _Tagged(gettext.NullTranslations):
    """A catalog that marks every message with its locale, so tests see which one was used."""

    def __init__(self, locale: str) -> None:
        super().__init__()
        self.locale = locale

    def gettext(self, message: str) -> str:
        return f"[{self.locale}] {message}"


@pytest.fixture
def tagged_catalogs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace the real catalogs (still being translated) by locale-tagging ones."""
    monkeypatch.setattr(i18n, "translations", _Tagged)
