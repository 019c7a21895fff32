"""The claim engine's cheap refusals: a sale kept per process, the database read only for a
unit the Redis script (or, embedded, the SQL step) grants, and nothing wrong for all that:
a cancel elsewhere refuses at once, a non-member's unit goes back, never beyond the stock."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, func, select

from bot.admin import flashsales as admin_sales
from bot.app import Core, build_core
from bot.core.errors import DomainError
from bot.core.i18n import Translator
from handlers.flashsale_engine import claim_sale
from storage import members
from storage.flash_stock import fast_path
from storage.models import FlashClaim, FlashSale, Member
from tests.conftest import make_settings
from tests.handlers.flashsale_support import coffee, join, member_id, sale

T = Translator("en")


async def loaded(core: Core, ids: list[int]) -> list[Member]:
    async with core.services.db.reader() as session:
        found = [await members.get(session, i) for i in ids]
    return [m for m in found if m is not None]


async def outcome(core: Core, who: Member, code: str) -> str:
    try:
        return (await claim_sale(core.services, who, code, T)).text.split("!")[0]
    except DomainError as refused:
        return T(refused.message, **refused.params)


@contextmanager
def statements(core: Core) -> Iterator[list[str]]:
    """Every SQL statement the core's database runs meanwhile (writer and readers)."""
    seen: list[str] = []
    db = core.services.db
    engines = {db.engine.sync_engine, db._read_engine.sync_engine}

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    for engine in engines:
        event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", note)


async def test_a_sold_out_crowd_costs_no_database_round_trip(core: Core) -> None:
    community = await coffee(core)
    crowd = await loaded(core, [await join(core, community, "console", f"m{i}") for i in range(6)])
    posted = await sale(core, stock=2)
    assert [await outcome(core, who, posted["code"]) for who in crowd[:3]] == [
        "You got Geisha beans",
        "You got Geisha beans",
        "Sorry, Geisha beans is sold out.",
    ]

    with statements(core) as seen:
        later = [await outcome(core, who, posted["code"]) for who in crowd[3:]]
    assert later == ["Sorry, Geisha beans is sold out."] * 3
    assert seen == []


async def test_a_sale_cancelled_in_another_process_is_refused_at_once(
    core: Core, backend: tuple[str, str | None], clock: Any
) -> None:
    community = await coffee(core)
    alice, bob = await loaded(
        core, [await join(core, community, "console", name) for name in ("alice", "bob")]
    )
    posted = await sale(core, stock=5)
    assert await outcome(core, alice, posted["code"]) == "You got Geisha beans"  # kept here now

    other = await build_core(
        make_settings(*backend), clock=clock, keys=core.services.cache.keys, migrate_sqlite=False
    )
    try:
        await admin_sales.cancel_sale(other.services, posted["code"])
    finally:
        await other.close()

    assert await outcome(core, bob, posted["code"]) == "Sorry, Geisha beans has ended."
    async with core.services.db.reader() as session:
        claims = (await session.execute(select(func.count()).select_from(FlashClaim))).scalar()
    assert claims == 1


async def test_a_non_members_unit_goes_back(core: Core) -> None:
    community = await coffee(core)
    [member] = await loaded(core, [await join(core, community, "console", "member")])
    [stranger] = await loaded(core, [await member_id(core, "console", "stranger")])
    posted = await sale(core, stock=1)

    assert await outcome(core, stranger, posted["code"]) == (
        "Geisha beans is for members of Coffee lovers. Join it first: send “join coffee”."
    )
    assert await outcome(core, member, posted["code"]) == "You got Geisha beans"
    fast = fast_path(core.services.cache)
    if fast is not None:
        async with core.services.db.reader() as session:
            sale_id = (
                await session.execute(select(FlashSale.id).where(FlashSale.code == posted["code"]))
            ).scalar_one()
        assert await fast.cache.redis.hget(fast._keys(sale_id)[0], "claimed") == "1"


async def test_members_and_strangers_racing_get_exactly_the_stock(core: Core) -> None:
    community = await coffee(core)
    insiders = await loaded(
        core, [await join(core, community, "console", f"in{i}") for i in range(30)]
    )
    outsiders = await loaded(core, [await member_id(core, "console", f"out{i}") for i in range(20)])
    posted = await sale(core, stock=25, per_member_limit=2)
    crowd = [(insiders + outsiders)[i % 50] for i in range(300)]

    results = await asyncio.gather(*(outcome(core, who, posted["code"]) for who in crowd))
    # Whatever the strangers' units did meanwhile, none is lost: the insiders get the rest.
    results += [await outcome(core, who, posted["code"]) for who in insiders * 2]

    async with core.services.db.reader() as session:
        claims = list((await session.execute(select(FlashClaim))).scalars())
        row = (
            await session.execute(select(FlashSale).where(FlashSale.code == posted["code"]))
        ).scalar_one()
    assert results.count("You got Geisha beans") == 25
    assert len(claims) == 25 == row.claimed
    assert {c.member_id for c in claims} <= {m.id for m in insiders}
    assert max(Counter(c.member_id for c in claims).values()) <= 2
    fast = fast_path(core.services.cache)
    if fast is not None:
        claimed = await fast.cache.redis.hget(fast._keys(row.id)[0], "claimed")
        assert claimed == "25"
