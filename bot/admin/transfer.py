"""Bringing a shop's existing members in (opening balances through the ledger), and taking
members and the ledger out as CSV."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from sqlalchemy import select

from bot.admin import fields
from bot.admin.errors import Invalid
from bot.core.context import Services
from bot.settings import LOCALES
from handlers.profile import parse_birthday
from storage import ledger, members
from storage.db import once_more_if_needed
from storage.models import Identity, LedgerEntry, Member

COLUMNS = ("channel", "external_id", "points", "name", "birthday", "locale")
REQUIRED = ("channel", "external_id")
NAME_MAX = 64
IMPORT_REASON = "opening balance"
MEMBER_COLUMNS = (
    "member_id",
    "channel",
    "external_id",
    "name",
    "birthday",
    "locale",
    "points",
    "growth",
    "tier",
    "created_at",
    "muted",
)
LEDGER_COLUMNS = (
    "id",
    "member_id",
    "kind",
    "amount",
    "reason",
    "idempotency_key",
    "created_at",
    "expires_at",
    "remaining",
)
PAGE = 1000


@dataclass(frozen=True)
class Row:
    line: int
    channel: str
    external_id: str
    points: int
    name: str | None
    birthday: str | None
    locale: str | None


@dataclass
class Report:
    imported: int = 0  # rows that brought a member or a balance in
    already: int = 0  # rows imported before (the file run again): nothing changed
    refused: list[tuple[int, str]] = field(default_factory=list)  # (line, why)


def check_header(header: Iterable[str] | None) -> None:
    names = list(header or ())
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise Invalid("file", f"the header must name {', '.join(REQUIRED)}; missing {missing[0]}")
    unknown = [c for c in names if c not in COLUMNS]
    if unknown:
        raise Invalid("file", f"unknown column {unknown[0][:40]!r}: use {', '.join(COLUMNS)}")


def parse_row(line: int, raw: Mapping[str, str | None], max_points: int) -> Row:
    """One CSV row as a Row, or Invalid naming the column and why."""

    def value(name: str) -> str:
        return (raw.get(name) or "").strip()

    channel = fields.channel(value("channel"))
    external = fields.external_id(value("external_id"))
    points_text = value("points") or "0"
    if not (points_text.isascii() and points_text.isdigit()) or int(points_text) > max_points:
        raise Invalid("points", f"points must be a whole number from 0 to {max_points}")
    name = value("name") or None
    if name is not None and (len(name) > NAME_MAX or not fields.plain_text(name)):
        raise Invalid("name", f"name must be text of at most {NAME_MAX} characters")
    birthday = None
    if value("birthday"):
        birthday = parse_birthday(value("birthday"))
        if birthday is None:
            raise Invalid("birthday", "birthday must be MM-DD, a real day")
    locale = value("locale") or None
    if locale is not None and locale not in LOCALES:
        raise Invalid("locale", f"locale must be one of {', '.join(LOCALES)}")
    return Row(line, channel, external, int(points_text), name, birthday, locale)


def import_key(member_id: int) -> str:
    """One opening balance per member, whatever the file and however often it is run."""
    return f"import:{member_id}"


async def import_row(services: Services, row: Row) -> bool:
    """Bring one member in; False when this row was imported before (nothing changes)."""
    now = services.clock.now()

    async def once() -> bool:
        member, created = await members.get_or_create(
            services.db, row.channel, row.external_id, now, display_name=row.name
        )
        async with services.db.transaction() as session:
            held = await ledger.lock_member(session, member.id)
            if await ledger.entry(session, import_key(member.id)) is not None:
                return False
            if row.points:
                await ledger.earn(
                    session,
                    member.id,
                    row.points,
                    IMPORT_REASON,
                    import_key(member.id),
                    now,
                    expiry_days=services.rules.points.expiry_days,
                )
            if row.birthday:
                await members.set_birthday_once(session, member.id, row.birthday)
            if row.locale and held.locale is None:
                await members.set_locale(session, member.id, row.locale)
            if row.name and held.display_name is None:
                held.display_name = row.name
        return created or row.points > 0

    return await once_more_if_needed(once)


async def import_members(
    services: Services, stream: TextIO, progress: Callable[[int, int], None] | None = None
) -> Report:
    """Every row of a members CSV (header: channel, external_id[, points, name, birthday,
    locale]); a bad row is refused with its line and reason, the others go in."""
    reader = csv.DictReader(stream)
    check_header(reader.fieldnames)
    rows = list(reader)
    report = Report()
    limit = services.rules.points.max_adjustment
    for index, raw in enumerate(rows):
        line = index + 2  # the header is line 1
        try:
            row = parse_row(line, raw, limit)
        except Invalid as exc:
            report.refused.append((line, exc.message))
        else:
            if await import_row(services, row):
                report.imported += 1
            else:
                report.already += 1
        if progress is not None and (index % 100 == 99 or index == len(rows) - 1):
            progress(index + 1, len(rows))
    return report


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    return value.isoformat() if hasattr(value, "isoformat") else value


async def _pages(services: Services, stmt: Any) -> AsyncIterator[list[Any]]:
    """Rows of `stmt` (ordered by an id, its first column) a page at a time."""
    after = 0
    while True:
        async with services.db.reader() as session:
            result = await session.execute(stmt.where(stmt.selected_columns[0] > after).limit(PAGE))
            page = list(result.all())
        if not page:
            return
        yield page
        after = page[-1][0]


async def export_members(services: Services, out: TextIO) -> int:
    """One CSV row per app account (a member with two apps has two rows); returns the count."""
    writer = csv.writer(out)
    writer.writerow(MEMBER_COLUMNS)
    stmt = (
        select(
            Identity.id,
            Member.id,
            Identity.channel,
            Identity.external_id,
            Member.display_name,
            Member.birthday,
            Member.locale,
            Member.points,
            Member.growth,
            Member.tier,
            Member.created_at,
            Member.muted_at,
        )
        .join(Member, Member.id == Identity.member_id)
        .order_by(Identity.id)
    )
    count = 0
    async for page in _pages(services, stmt):
        for _, *values, muted_at in page:
            writer.writerow([_cell(v) for v in values] + [int(muted_at is not None)])
            count += 1
    return count


async def export_ledger(services: Services, out: TextIO) -> int:
    """Every ledger entry, oldest first; returns the count."""
    writer = csv.writer(out)
    writer.writerow(LEDGER_COLUMNS)
    columns = [getattr(LedgerEntry, name) for name in LEDGER_COLUMNS]
    stmt = select(*columns).order_by(LedgerEntry.id)
    count = 0
    async for page in _pages(services, stmt):
        for values in page:
            writer.writerow([_cell(v) for v in values])
            count += 1
    return count
