"""Flash sales' rules in one place: who may claim, the claim itself, the start and the end.

Every door (button, `/claim`, 抢 CODE, the deep link) claims through `claim_sale`; the API,
the CLI and `/flashsale` start and end sales through `start_sale` / `end_sale`, which the
every-minute hook also runs. Pushes (the group announcement, its counter, WeChat members,
the moderator's summary) go through the outbox in the same transaction as their cause.

A crowd mostly loses, so losing costs no database round trip: each process keeps a sale's
definition (it never changes but for its state), what it knows from the member row already
loaded (tier, age) refuses first, then the Redis script (window, limit, stock); only a unit
the script granted reads the membership and writes the claim. What the database once said
(sold out, closed) is kept too: both are final.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from weakref import WeakKeyDictionary

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Services
from bot.core.errors import DomainError
from bot.core.i18n import N_, Translator
from bot.core.messages import Reply
from bot.jobs.pushes import policy, push_to_chat
from bot.jobs.quiet import quiet_until
from handlers.communities import name_of
from handlers.flashsale_posts import (
    counter_edit,
    early_tier,
    end_sale,
    local,
    opens_for,
)
from handlers.tiers import tier_label
from storage import badges as badge_rows
from storage import flash_claims, flash_fast, flashsales, identities, outbox
from storage.db import Database
from storage.flash_stock import OK, SQL_ONLY, RedisStock, fast_path
from storage.flashsales import Won
from storage.models import Community, FlashSale, Member

log = logging.getLogger("memberbot.flashsales")

# Work another feature attaches to every won unit, inside the claim's transaction (the
# gamification issue's "first flash-sale win" badge): (session, services, member id, sale id).
# It may return what to add to the member's reply (lines in their language), or None.
Note = Callable[[Translator], list[str]]
WinHook = Callable[[AsyncSession, Services, int, int], Awaitable[Note | None]]
WIN_HOOKS: list[WinHook] = []


FINAL = (flashsales.SOLD_OUT, flashsales.CLOSED)  # what the database never takes back


@dataclass(frozen=True)
class WinBadge:
    """A badge a won unit gives (once per member), written with the claim itself (on
    PostgreSQL in its one statement, which a WinHook would prevent); `note`: the lines the
    winner's reply adds when it is given now."""

    badge: str
    note: Callable[[Translator], list[str]]


WIN_BADGES: list[WinBadge] = []


LIMIT_REFUSAL = N_("You already have {limit} of {title}: that is the limit per member.")


@dataclass(frozen=True)
class Door:
    """Where a claim came from, as far as its answer goes.

    `group_account` (channel, external id): a button pressed in a group. The answer there is
    only a toast, given at once; the claim code goes to that account's private chat as an
    outbox push written in the claim's transaction (a crash after the commit cannot lose it),
    when the person wrote there before and the app did not refuse a delivery since; else the
    toast opens that chat by a deep link. (A member whose first contact is the press
    cannot win: they are in no community yet.)"""

    group_account: tuple[str, str] | None = None
    # "<channel>:<the app's message id>": the claim is keyed on it, so a redelivery of the
    # message (after a crash between the commit and the answer) answers the same claim.
    message_key: str | None = None


KEEP_SECONDS = 60.0  # a kept sale is read again after this (its community's names may change)


@dataclass
class Known:
    """A sale as this process keeps it; `over` once the database said SOLD_OUT or CLOSED."""

    sale: FlashSale
    community: Community
    read_at: float
    over: str | None = None
    # Without Redis (one process): the members who won here since the sale was read with
    # nothing claimed; None when not known (read after units went).
    holders: set[int] | None = None


# Per database (tests run many in one process), by sale code; and the reads under way, so a
# crowd arriving at once reads a sale once.
_KNOWN: WeakKeyDictionary[Database, dict[str, Known]] = WeakKeyDictionary()
_READING: WeakKeyDictionary[Database, dict[str, asyncio.Future[Known | None]]] = WeakKeyDictionary()


async def known_sale(services: Services, raw_code: str) -> Known | None:
    """The sale as kept here, read from the database the first time (and every KEEP_SECONDS)."""
    code = flashsales.normalise_code(raw_code)
    found = _KNOWN.setdefault(services.db, {}).get(code)
    if found is not None and time.monotonic() - found.read_at < KEEP_SECONDS:
        return found
    reading = _READING.setdefault(services.db, {})
    under_way = reading.get(code)
    if under_way is None:
        under_way = asyncio.ensure_future(_read(services, code, found))
        reading[code] = under_way
        under_way.add_done_callback(lambda _: reading.pop(code, None))
    return await asyncio.shield(under_way)


async def _read(services: Services, code: str, found: Known | None) -> Known | None:
    async with services.db.reader() as session:
        row = await flashsales.with_community(session, code)
    if row is None:
        return None
    sale, community = row
    over = found.over if found is not None else None
    if sale.claimed >= sale.stock:  # (a sale that sold out has ended too: it says sold out)
        over = flashsales.SOLD_OUT
    elif sale.state not in flashsales.OPEN:
        over = flashsales.CLOSED
    holders: set[int] | None = set() if sale.claimed == 0 else None
    if found is not None:  # read again: what this process learnt stays
        holders = found.holders
    known = Known(sale, community, time.monotonic(), over, holders)
    _KNOWN.setdefault(services.db, {})[code] = known
    return known


def sale_closed(services: Services, code: str) -> None:
    """This process cancelled the sale: refuse it at once here (other processes learn it
    from Redis, where a cancel ends the sale, or from the SQL step)."""
    found = _KNOWN.get(services.db, {}).get(flashsales.normalise_code(code))
    if found is not None:
        found.over = flashsales.CLOSED


async def claim_sale(
    services: Services, me: Member, raw_code: str, t: Translator, door: Door | None = None
) -> Reply:
    """Claim one unit of the sale for the member: the claim code, or a DomainError saying why."""
    door = door or Door()
    now = services.clock.now()
    known = await known_sale(services, raw_code)
    if known is None:
        _count(services, "unknown")
        raise DomainError(
            N_("There is no flash sale {code}. Please check the code."),
            code=flashsales.normalise_code(raw_code)[:10],
        )
    sale = known.sale
    try:
        _check_may_claim(services, me, known, now, t)
        text, pushed = await _decide(services, known, me, now, t, door)
    except flashsales.Again as again:
        _count(services, "repeat")
        text, pushed = await _again(services, known, me, again.claim_code, t, door)
    except flashsales.Refused as refused:
        earlier = await _won_by_message(services, known, me, door, refused)
        if earlier is None:
            _count(services, refused.reason)
            raise _refusal(services, refused.reason, known, me, t) from None
        _count(services, "repeat")
        text, pushed = await _again(services, known, me, earlier, t, door)
    else:
        _count(services, "won")
    services.pushes.wake()
    if door.group_account is not None and not pushed:
        toast = t(
            N_("You got {title}! Open our private chat to see your claim code."), title=sale.title
        )
    else:
        toast = t(N_("You got {title}! Your claim code is in our private chat."), title=sale.title)
    return Reply(
        text, private=True, toast=toast, open_private=door.group_account is not None and not pushed
    )


async def _won_by_message(
    services: Services, known: Known, me: Member, door: Door, refused: flashsales.Refused
) -> str | None:
    """The claim code this very message won before, when the refusal may be its redelivery:
    only a member who may hold a unit is looked up (the losing crowd costs no read)."""
    if door.message_key is None or refused.held is False:
        return None
    if refused.reason not in (flashsales.LIMIT, flashsales.SOLD_OUT, flashsales.CLOSED):
        return None
    sale_id = known.sale.id
    for delay in REDELIVERY_WAITS:
        async with services.db.reader() as session:
            code = await flash_claims.by_message(session, sale_id, me.id, door.message_key)
            # Redis says the member holds a unit, the database shows none yet: it is in flight,
            # very likely this message's first copy, whose answer this copy must repeat.
            # (Only "sold out"/"closed": a limit refusal says held of every holder's press.)
            if code is not None or refused.held is not True or refused.reason == flashsales.LIMIT:
                return code
            if await flash_claims.claims_held(session, sale_id, me.id):
                return None
        await asyncio.sleep(delay)
    return None


# How long a redelivered copy waits, at most, for its first copy's unit to commit (about 3 s).
REDELIVERY_WAITS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)


async def _again(
    services: Services, known: Known, me: Member, claim_code: str, t: Translator, door: Door
) -> tuple[str, bool]:
    """The answer of the claim the message won already (its push, queued then, not again)."""
    sale = known.sale
    text = _won_text(t, sale, Won(claim_code, 0, 0, False), [])
    async with services.db.transaction() as session:
        pushed = await _push_code(
            session, services, me, sale, Won(claim_code, 0, 0, False), text, door
        )
    return text, pushed


def _won_text(t: Translator, sale: FlashSale, won: Won, notes: list[Note]) -> str:
    text = t(
        N_(
            "You got {title}! Your claim code: {claim_code}\n"
            "Show it at the shop to buy it for {price}."
        ),
        title=sale.title,
        claim_code=won.claim_code,
        price=sale.price,
    )
    return "\n".join([text, *(line for note in notes for line in note(t))])


# The claims under way in this process by message, per database: (sale, member, message key)
# -> the claim code that message got (None: it got none).
_UNDER_WAY: WeakKeyDictionary[Database, dict[tuple[int, int, str], asyncio.Future[str | None]]] = (
    WeakKeyDictionary()
)


async def _decide(
    services: Services, known: Known, me: Member, now: datetime, t: Translator, door: Door
) -> tuple[str, bool]:
    """The claim, once per message in this process: a copy of a message whose claim is under
    way here (a redelivery racing its first copy) waits for that claim and answers it again
    (`Again`) when it won, instead of taking a unit of its own in Redis only to give it back:
    units held by copies in flight made the crowd hear "sold out" while a unit was still to
    come back. When the first copy got no unit, the copy is decided as any claim."""
    if door.message_key is None:
        text, pushed, _ = await _decide_unit(services, known, me, now, t, door)
        return text, pushed
    under_way = _UNDER_WAY.setdefault(services.db, {})
    mark = (known.sale.id, me.id, door.message_key)
    while (first := under_way.get(mark)) is not None:
        code = await asyncio.shield(first)
        if code is not None:
            raise flashsales.Again(code)
    mine: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
    under_way[mark] = mine
    code = None
    try:
        text, pushed, code = await _decide_unit(services, known, me, now, t, door)
        return text, pushed
    except flashsales.Again as again:
        code = again.claim_code
        raise
    finally:
        mine.set_result(code)
        if under_way.get(mark) is mine:
            del under_way[mark]


async def _decide_unit(
    services: Services, known: Known, me: Member, now: datetime, t: Translator, door: Door
) -> tuple[str, bool, str]:
    """The claim engine: with Redis its script turns the crowd away first; the SQL step
    (membership, unique unit row + conditional UPDATE) decides every unit either way. Returns
    the winner's text, whether it was queued for their private chat, and the claim code."""
    sale = known.sale
    opens_at = opens_for(services, sale, me.tier)
    code = flashsales.new_code(flashsales.CLAIM_CODE_LENGTH)
    handoff: flash_fast.Handoff | None = None
    fast = fast_path(services.cache)
    if fast is not None:
        verdict = await fast.take(services.db, sale.id, me.id, now, opens_at, code)
        if verdict == SQL_ONLY:
            fast = None
        elif verdict != OK:
            reason, plus, _ = verdict.partition("+")
            raise flashsales.Refused(reason, held=bool(plus))
    try:
        if now < opens_at:  # (the SQL step's first check; the one statement leaves it here)
            raise flashsales.Refused(flashsales.NOT_STARTED)
        # PostgreSQL: one statement (win hooks need the general path's transaction).
        if services.db.dialect == "postgresql" and not WIN_HOOKS and len(WIN_BADGES) <= 1:
            handoff = (
                None if fast is None else flash_fast.Handoff(_settler(fast, sale.id, me.id, code))
            )
            done = await _decide_in_one(services, known, me, now, t, door, code, handoff)
        else:
            done = None
        if done is not None:
            text, pushed, won = done
        else:
            text, pushed, won = await _decide_in_transaction(
                services, known, me, now, t, door, code, opens_at
            )
    except BaseException as failed:
        # Handed off: cancelled once its claim was sent, the unit is settled by its answer.
        if fast is not None and not (handoff is not None and handoff.taken):
            # The database's "over" is final: Redis is made final, not given back.
            over = failed.reason if isinstance(failed, flashsales.Refused) else ""
            await fast.give_back(sale.id, me.id, code, over if over in FINAL else "")
        raise
    text, pushed = await _after_win(
        services, known, me, now, won, fast, code, text, pushed, ended=done is None
    )
    return text, pushed, won.claim_code


def _settler(
    fast: RedisStock, sale_id: int, member_id: int, code: str
) -> Callable[[flash_fast.Fast | None], Awaitable[None]]:
    """What a claim whose caller went away does with its Redis unit once its answer comes: kept
    when it won (committed), else given back (made final on sold out / closed)."""

    async def settle(answer: flash_fast.Fast | None) -> None:
        if answer is not None and answer.status == flash_fast.WON:
            return
        over = answer.reason if answer is not None and answer.status == flash_fast.REFUSED else ""
        try:
            await fast.give_back(sale_id, member_id, code, over if over in FINAL else "")
        except Exception:  # its in-flight mark runs out and is reconciled from the rows
            log.warning("giving back a unit failed sale=%s", sale_id, exc_info=True)

    return settle


async def _decide_in_transaction(
    services: Services,
    known: Known,
    me: Member,
    now: datetime,
    t: Translator,
    door: Door,
    code: str,
    opens_at: datetime,
) -> tuple[str, bool, Won]:
    """The SQL step as a transaction of statements (SQLite; PostgreSQL with win hooks, or
    after the one statement met a unique key taken meanwhile)."""
    sale = known.sale
    async with services.db.transaction() as session:
        if known.over is not None:  # learnt while this claim waited (SQLite's one writer)
            raise flashsales.Refused(known.over)
        if not await flashsales.is_member(session, sale.community_id, me.id):
            raise flashsales.Refused(flashsales.NOT_MEMBER)
        try:
            won = await flashsales.claim(
                session, sale, me.id, now, opens_at, code, door.message_key
            )
        except flashsales.Refused as refused:
            if refused.reason in (flashsales.SOLD_OUT, flashsales.CLOSED):
                known.over = refused.reason
            raise
        if won.announced:
            await counter_edit(session, services, sale, now, known.community)
        notes = []
        for on_win in WIN_HOOKS:
            note = await on_win(session, services, me.id, sale.id)
            if note is not None:
                notes.append(note)
        for given in WIN_BADGES:
            if await badge_rows.award(session, me.id, given.badge, now):
                notes.append(given.note)
        text = _won_text(t, sale, won, notes)
        pushed = await _push_code(session, services, me, sale, won, text, door)
        if won.sold_out:
            await end_sale(session, services, sale.id, now)
    return text, pushed, won


async def _after_win(
    services: Services,
    known: Known,
    me: Member,
    now: datetime,
    won: Won,
    fast: RedisStock | None,
    code: str,
    text: str,
    pushed: bool,
    *,
    ended: bool = False,
) -> tuple[str, bool]:
    """What follows a committed claim. After the one-statement claim (`ended` False) the
    group's counter edit and, for the last unit, the sale's end run in a transaction of their
    own, out of the claim's lock: a crash in between loses no unit nor code (the next claim's
    edit, or the end's final one, carries the count; the every-minute job ends a sold-out
    sale that was not ended)."""
    sale = known.sale
    if won.sold_out:
        known.over = flashsales.SOLD_OUT
    if known.holders is not None:
        known.holders.add(me.id)
    if fast is not None:
        try:
            await fast.confirm(sale.id, me.id, code, sold_out=won.sold_out)
        except Exception:  # won all the same: its mark runs out and a reconcile finds the row
            log.warning("flash sale confirm failed sale=%s", sale.id, exc_info=True)
    if not ended and won.sold_out:
        try:
            async with services.db.transaction() as session:
                await end_sale(session, services, sale.id, now)  # (its final counter edit too)
        except Exception:  # the claim stands; see above for who catches up
            log.warning("flash sale end failed sale=%s", sale.id, exc_info=True)
    elif not ended and won.announced:
        await _count_in_group(services, known, now)
    return text, pushed


@dataclass
class _Counting:
    """The group counter's edit under way in this process for a sale, and whether claims won
    since it read the count (it then edits once more)."""

    task: asyncio.Future[None]
    again: bool = False


_COUNTING: WeakKeyDictionary[Database, dict[int, _Counting]] = WeakKeyDictionary()


async def _count_in_group(services: Services, known: Known, now: datetime) -> None:
    """Edit the group's counter, coalesced: every winner's edit is a transaction on the same
    outbox row, and 200 winners queued on its lock held their answers for seconds. The claim
    that starts an edit waits for it; one arriving meanwhile only asks for one more edit (run
    after it, reading the count then) and answers at once."""
    under_way = _COUNTING.setdefault(services.db, {})
    sale_id = known.sale.id
    counting = under_way.get(sale_id)
    if counting is not None and not counting.task.done():
        counting.again = True
        return
    first: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def edits() -> None:
        at, again = now, True
        try:
            while again:
                try:
                    async with services.db.transaction() as session:
                        await counter_edit(session, services, known.sale, at, known.community)
                except Exception:  # the claim stands: a later edit or the end's final one counts
                    log.warning("flash sale counter failed sale=%s", sale_id, exc_info=True)
                if not first.done():
                    first.set_result(None)
                at, again, current.again = services.clock.now(), current.again, False
        finally:
            if not first.done():
                first.set_result(None)
            if under_way.get(sale_id) is current:
                del under_way[sale_id]

    current = _Counting(asyncio.ensure_future(edits()))
    under_way[sale_id] = current
    await asyncio.shield(first)


async def _decide_in_one(
    services: Services,
    known: Known,
    me: Member,
    now: datetime,
    t: Translator,
    door: Door,
    code: str,
    handoff: flash_fast.Handoff | None = None,
) -> tuple[str, bool, Won] | None:
    """PostgreSQL: the SQL step as one statement (storage/flash_fast.py); None when a unique
    key raced it (the general path sorts that out, with the same unit and code)."""
    sale = known.sale
    if known.over is not None:
        raise flashsales.Refused(known.over)
    won = Won(code, 0, 0, False)
    text = _won_text(t, sale, won, [])
    badge = WIN_BADGES[0] if WIN_BADGES else None
    badged = _won_text(t, sale, won, [badge.note]) if badge else text
    push = None
    if door.group_account is not None:
        channel, external_id = door.group_account
        rule = policy("flashsale-code")
        later = None
        if rule.quiet:
            nudges = services.rules.nudges
            tz = services.settings.tz
            later = quiet_until(now, tz, nudges.quiet_start, nudges.quiet_end)
        push = flash_fast.CodePush(
            channel,
            external_id,
            f"flashsale:{sale.id}:code:{code}",
            Reply(text, private=True).to_json(),
            Reply(badged, private=True).to_json(),
            rule.marketing,
            rule.quiet,
            later or now,
        )
    # With the other winners of the sale arriving meanwhile in this process: one statement,
    # one commit for them all (the sale's row lock is taken once per batch, not per winner).
    done = await flash_fast.claim_grouped(
        services.db,
        sale.id,
        sale.community_id,
        flash_fast.Ask(me.id, code, now, door.message_key, push),
        badge.badge if badge else None,
        handoff,
    )
    if done.status == flash_fast.CONFLICT:
        return None
    if done.status == flash_fast.AGAIN:
        raise flashsales.Again(done.claim_code)
    if done.status == flash_fast.REFUSED:
        if done.reason in (flashsales.SOLD_OUT, flashsales.CLOSED):
            known.over = done.reason
        # None: the statement's snapshot may predate this very message's win (a redelivery
        # racing it), so the refusal looks it up.
        raise flashsales.Refused(done.reason, held=True if done.held > 0 else None)
    won = Won(code, done.unit, done.claimed, done.sold_out, done.announced)
    return badged if done.badged else text, done.pushed, won


async def _push_code(
    session: AsyncSession,
    services: Services,
    me: Member,
    sale: FlashSale,
    won: Won,
    text: str,
    door: Door,
) -> bool:
    """A group press's code, queued for the presser's private chat; False (the deep link)
    unless the person is known to have written there (private_chat_at) and the app did not
    refuse a delivery since (blocked)."""
    if door.group_account is None:
        return False
    channel, external_id = door.group_account
    account = await identities.get(session, channel, external_id)
    if account is None or account.unreachable or account.private_chat_at is None:
        return False
    target = outbox.Target(channel, external_id, me.id, outbox.SEND)
    key = f"flashsale:{sale.id}:code:{won.claim_code}"
    await push_to_chat(session, services, target, "flashsale-code", key, Reply(text, private=True))
    return True


async def codes_held(services: Services, me: Member, raw_code: str, t: Translator) -> Reply | None:
    """The member's claim codes for the sale, or None when they hold none."""
    async with services.db.reader() as session:
        sale = await flashsales.by_code(session, raw_code)
        held = await flash_claims.claims_held(session, sale.id, me.id) if sale else []
    if sale is None or not held:
        return None
    return Reply(
        t(
            N_(
                "Your claim codes for {title}: {codes}\nShow one at the shop to buy it for {price}."
            ),
            title=sale.title,
            codes=", ".join(held),
            price=sale.price,
        ),
        private=True,
    )


def _count(services: Services, result: str) -> None:
    services.metrics.flash_claims.labels(result).inc()


def _check_may_claim(
    services: Services, me: Member, known: Known, now: datetime, t: Translator
) -> None:
    """What this process can tell without a round trip (the engine decides the rest)."""
    rules = services.rules
    sale = known.sale
    # With Redis its script refuses as cheaply, and says whether the member holds a unit.
    if known.over is not None and fast_path(services.cache) is None:
        holders = known.holders
        raise flashsales.Refused(known.over, None if holders is None else me.id in holders)
    if sale.ends_at <= now:
        raise flashsales.Refused(flashsales.CLOSED)
    if sale.min_tier and rules.tier_rank(me.tier) < rules.tier_rank(sale.min_tier):
        _count(services, "tier")
        raise DomainError(
            N_("{title} is for {tier} members and above. You are {mine}."),
            title=sale.title,
            tier=tier_label(t, sale.min_tier),
            mine=tier_label(t, me.tier),
        )
    days = rules.flash_sales.min_member_days
    if days and me.created_at + timedelta(days=days) > now:
        _count(services, "too_new")
        raise DomainError(
            N_("Flash sales are for members of at least {days} days. You can claim from {date}."),
            days=days,
            date=local(services, me.created_at + timedelta(days=days)),
        )


def _refusal(
    services: Services, reason: str, known: Known, me: Member, t: Translator
) -> DomainError:
    sale, community = known.sale, known.community
    if reason == flashsales.NOT_MEMBER:
        return DomainError(
            N_("{title} is for members of {community}. Join it first: send “join {slug}”."),
            title=sale.title,
            community=name_of(community, t.locale),
            slug=community.slug,
        )
    if reason == flashsales.SOLD_OUT:
        return DomainError(N_("Sorry, {title} is sold out."), title=sale.title)
    if reason == flashsales.CLOSED:
        return DomainError(N_("Sorry, {title} has ended."), title=sale.title)
    if reason == flashsales.LIMIT:
        return DomainError(
            LIMIT_REFUSAL,
            limit=sale.per_member_limit,
            title=sale.title,
        )
    now = services.clock.now()
    early = early_tier(services)
    if early is not None and now >= sale.starts_at - timedelta(minutes=early[1]):
        return DomainError(
            N_("{title} is open early to {tier} members and above. You can claim from {start}."),
            title=sale.title,
            tier=tier_label(t, early[0]),
            start=local(services, opens_for(services, sale, me.tier)),
        )
    return DomainError(
        N_("{title} has not started yet. You can claim from {start}."),
        title=sale.title,
        start=local(services, opens_for(services, sale, me.tier)),
    )
