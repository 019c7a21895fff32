"""A flash-sale claim on PostgreSQL in ONE statement: the winner's durable step.

`storage.flashsales.claim` takes ~8 round trips (BEGIN, the membership, the member's count,
the claim row, the conditional UPDATE, the identity, the code's push, COMMIT), and from the
UPDATE to the COMMIT it holds the sale's row lock: a crowd of winners queues on that lock for
all those round trips. Here the same writes are one statement run in autocommit (atomic by
itself, no BEGIN/COMMIT), so the lock is held only while the server runs it:

* the conditional UPDATE (claimed < stock, the sale open, the window) also asks that the
  member has joined the community, holds fewer units than the limit, and that the message won
  nothing yet (its key); only then
* the claim row is inserted (unit = the units held + 1) with NO `ON CONFLICT`: a unique key
  taken meanwhile (the member's unit by a concurrent claim of theirs, the message's key by a
  concurrent redelivery, the claim code) raises, and the error rolls the whole statement back,
  the UPDATE with it. The caller then runs the general path (`CONFLICT`), which sorts it out;
* the winner's code push (kind `flashsale-code`) is inserted with the claim row, when the
  account is one the app delivers to; so is the win's badge (the first flash-sale win), given
  once per member, and the push carries the text that announces it when it was given now.

No check-then-write: every condition is in the statement that writes, and the unique keys
decide between concurrent statements (their reads use the statement's snapshot; a claim
committed after it is caught by its unique row).

The engine sends its winners through `claim_grouped`: per process and sale, the claims that
arrive while the sale's statement runs go together in the next one (`claim_many`, the same
writes for many rows: one lock of the sale's row and one commit for all of them, which the
crowd of winners otherwise queued for one by one).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

from storage.db import Database
from storage.errors import MemberMerged

log = logging.getLogger("memberbot.flashsales")

WON, REFUSED, AGAIN, CONFLICT = "won", "refused", "again", "conflict"
MERGED = "merged"  # claim_many's answer for a member linked away (claim raises MemberMerged)


@dataclass(frozen=True)
class CodePush:
    """The winner's code push, rendered before the statement (the code is drawn before)."""

    channel: str
    chat_id: str
    dedupe_key: str
    payload: dict[str, Any]
    payload_badged: dict[str, Any]  # the text when the win's badge is given now
    marketing: bool
    quiet: bool
    not_before: datetime


@dataclass(frozen=True)
class Fast:
    status: str  # WON, REFUSED (`reason`), AGAIN (`claim_code`), CONFLICT (use the general path)
    reason: str = ""
    held: int = 0  # units the member held before (as the statement saw them)
    claim_code: str = ""
    unit: int = 0
    claimed: int = 0
    sold_out: bool = False
    announced: bool = False
    pushed: bool = False
    badged: bool = False  # the win's badge was given now


_CLAIM = """
WITH mem AS (
    SELECT 1 AS ok FROM community_members
    WHERE community_id = $2 AND member_id = $3 AND status = 'joined'
), held AS (
    SELECT count(*)::int AS n FROM flash_claims WHERE sale_id = $1 AND member_id = $3
), prior AS (
    SELECT claim_code FROM flash_claims WHERE message_key = $6 AND sale_id = $1 AND member_id = $3
), sale AS (
    UPDATE flash_sales SET
        claimed = claimed + 1,
        sold_out_at = CASE WHEN claimed + 1 >= stock THEN $5 ELSE sold_out_at END
    WHERE id = $1 AND claimed < stock AND state IN ('scheduled', 'live') AND ends_at > $5
      AND EXISTS (SELECT 1 FROM mem)
      AND (SELECT n FROM held) < per_member_limit
      AND NOT EXISTS (SELECT 1 FROM prior)
      AND NOT EXISTS (SELECT 1 FROM members WHERE id = $3 AND merged_into_id IS NOT NULL)
    RETURNING claimed, stock, announce_id
), ins AS (
    INSERT INTO flash_claims (claim_code, sale_id, member_id, unit, claimed_at, message_key)
    SELECT $4::varchar, $1, $3, held.n + 1, $5, $6 FROM sale, held
    RETURNING unit
), acct AS (
    SELECT 1 FROM identities WHERE channel = $7 AND external_id = $8 AND NOT unreachable
      AND private_chat_at IS NOT NULL  -- known to have written privately (else the deep link)
), badge AS (
    INSERT INTO badges (member_id, badge, earned_at)
    SELECT $3, $14::varchar, $5 FROM ins WHERE $14::varchar IS NOT NULL
    ON CONFLICT (member_id, badge) DO NOTHING
    RETURNING badge
), push AS (
    INSERT INTO outbox (dedupe_key, channel, chat_id, member_id, kind, mode, marketing, quiet,
                        payload, state, attempts, next_attempt_at, created_at, updated_at)
    SELECT $9::varchar, $7, $8, $3, 'flashsale-code', 'send', $10::boolean, $11::boolean,
           CASE WHEN EXISTS (SELECT 1 FROM badge) THEN $15::json ELSE $12::json END,
           'pending', 0, $13::timestamptz,
           $5, $5
    FROM ins, acct
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id
)
SELECT EXISTS (SELECT 1 FROM mem) AS member, (SELECT n FROM held) AS held,
       (SELECT claim_code FROM prior LIMIT 1) AS prior,
       (SELECT unit FROM ins) AS unit, sale.claimed, sale.stock,
       sale.announce_id IS NOT NULL AS announced, EXISTS (SELECT 1 FROM push) AS pushed,
       EXISTS (SELECT 1 FROM badge) AS badged,
       cur.state AS state, cur.claimed AS was_claimed, cur.stock AS was_stock,
       cur.ends_at AS ends_at, cur.per_member_limit AS per_member_limit,
       (SELECT merged_into_id FROM members WHERE id = $3) AS merged_into
FROM flash_sales cur LEFT JOIN sale ON true
WHERE cur.id = $1
"""

# sqlstate of unique_violation: a unique key another statement took meanwhile.
_UNIQUE = "23505"


async def claim(
    db: Database,
    sale_id: int,
    community_id: int,
    member_id: int,
    now: datetime,
    code: str,
    message_key: str | None,
    push: CodePush | None,
    badge: str | None = None,
) -> Fast:
    """One unit for the member (PostgreSQL only; the caller checked the opening time);
    `badge`: the one a win gives (once per member)."""
    args = (
        sale_id,
        community_id,
        member_id,
        code,
        now,
        message_key,
        push.channel if push else None,
        push.chat_id if push else None,
        push.dedupe_key[:160] if push else None,
        push.marketing if push else False,
        push.quiet if push else False,
        json.dumps(push.payload) if push else None,
        push.not_before if push else now,
        badge,
        json.dumps(push.payload_badged) if push else None,
    )
    try:
        async with db.driver() as conn:
            # asyncpg's own prepared-statement cache: one Bind/Execute round trip per call.
            row = await conn.fetchrow(_CLAIM, *args)
    except Exception as exc:
        if getattr(exc, "sqlstate", None) == _UNIQUE:
            return Fast(CONFLICT)
        raise
    if row is None:
        return Fast(REFUSED, "closed")
    done = _decided(row, code, now)
    if done.status == MERGED:
        raise MemberMerged(member_id)  # linked away: the middleware runs it as the survivor
    return done


def _decided(row: Any, code: str, now: datetime) -> Fast:
    """One claim's answer from its row of the statement (the one claim's, or claim_many's)."""
    held = int(row["held"])
    if row["unit"] is None and row["merged_into"] is not None:
        return Fast(MERGED, held=held)
    if row["unit"] is not None:
        claimed, stock = int(row["claimed"]), int(row["stock"])
        return Fast(
            WON,
            held=held,
            claim_code=code,
            unit=int(row["unit"]),
            claimed=claimed,
            sold_out=claimed >= stock,
            announced=bool(row["announced"]),
            pushed=bool(row["pushed"]),
            badged=bool(row["badged"]),
        )
    if not row["member"]:
        return Fast(REFUSED, "not_member", held)
    if row["prior"] is not None:
        return Fast(AGAIN, held=held, claim_code=row["prior"])
    if held >= int(row["per_member_limit"]):
        return Fast(REFUSED, "limit", held)
    # As storage.flashsales.claim says it: units left but the sale shut -> closed.
    open_ = row["state"] in ("scheduled", "live") and row["ends_at"] > now
    if int(row["was_claimed"]) < int(row["was_stock"]) and not open_:
        return Fast(REFUSED, "closed", held)
    return Fast(REFUSED, "sold_out", held)


# ---------------------------------------------------------------------------------------------
# Group commit: the winners of a sale that arrive while its previous statement runs go together
# in ONE statement (one lock of the sale's row, one commit, one WAL flush for them all).


@dataclass(frozen=True)
class Ask:
    """One winner's claim as claim_many takes it (what `claim` takes, but the sale's)."""

    member_id: int
    code: str
    now: datetime
    message_key: str | None = None
    push: CodePush | None = None


# The claim statement for many members at once, each a row of the unnest()-ed arrays (`i`:
# its place). Every condition of the one claim is asked per row (membership, units held,
# the message's earlier claim, linked away, the window) against the statement's snapshot; the
# rows that pass are ranked in their order and the conditional UPDATE grants the first
# min(n, stock - claimed) of them. `locked` takes the sale's row first (FOR UPDATE returns its
# latest version, waiting for a concurrent claim's commit) so the count before the grant is
# known: the winners are ranks 1..after-before. The claim rows, badges and code pushes follow
# as in `_CLAIM`; a unique key taken meanwhile raises and rolls the whole batch back (the
# caller then decides each claim alone). Every row comes back, winner or not, with what the
# one claim's statement says of it.
_CLAIM_MANY = """
WITH r AS (
    SELECT * FROM unnest($3::bigint[], $4::text[], $5::text[], $6::timestamptz[], $7::text[],
                         $8::text[], $9::text[], $10::boolean[], $11::boolean[], $12::text[],
                         $13::text[], $14::timestamptz[])
        WITH ORDINALITY AS r(member_id, code, message_key, at, channel, chat_id, dedupe_key,
                             marketing, quiet, payload, payload_badged, not_before, i)
), cur AS (
    SELECT state, claimed, stock, ends_at, per_member_limit FROM flash_sales WHERE id = $1
), facts AS (
    SELECT r.*,
        EXISTS (SELECT 1 FROM community_members cm WHERE cm.community_id = $2
                AND cm.member_id = r.member_id AND cm.status = 'joined') AS member,
        (SELECT count(*)::int FROM flash_claims c
         WHERE c.sale_id = $1 AND c.member_id = r.member_id) AS held,
        (SELECT c.claim_code FROM flash_claims c
         WHERE c.message_key = r.message_key AND c.sale_id = $1 AND c.member_id = r.member_id
        ) AS prior,
        (SELECT m.merged_into_id FROM members m WHERE m.id = r.member_id) AS merged_into
    FROM r
), eligible AS (
    SELECT f.i, row_number() OVER (ORDER BY f.i)::int AS rank FROM facts f, cur
    WHERE f.member AND f.prior IS NULL AND f.merged_into IS NULL
      AND f.held < cur.per_member_limit AND f.at < cur.ends_at
), locked AS (
    SELECT claimed AS before FROM flash_sales
    WHERE id = $1 AND EXISTS (SELECT 1 FROM eligible)
    FOR UPDATE
), sale AS (
    UPDATE flash_sales s SET
        claimed = s.claimed + LEAST(e.n, s.stock - s.claimed),
        sold_out_at = CASE WHEN s.claimed + e.n >= s.stock THEN $16 ELSE s.sold_out_at END
    FROM (SELECT count(*)::int AS n FROM eligible) e, locked
    WHERE s.id = $1 AND s.claimed < s.stock AND s.state IN ('scheduled', 'live') AND e.n > 0
    RETURNING locked.before, s.claimed AS after, s.stock, s.announce_id
), won AS (
    SELECT e.i, sale.before + e.rank AS claimed, sale.stock, sale.announce_id
    FROM eligible e, sale WHERE e.rank <= sale.after - sale.before
), ins AS (
    INSERT INTO flash_claims (claim_code, sale_id, member_id, unit, claimed_at, message_key)
    SELECT f.code, $1, f.member_id, f.held + 1, f.at, f.message_key
    FROM won JOIN facts f ON f.i = won.i
    RETURNING claim_code, unit
), badge AS (
    INSERT INTO badges (member_id, badge, earned_at)
    SELECT f.member_id, $15::varchar, f.at FROM ins JOIN facts f ON f.code = ins.claim_code
    WHERE $15::varchar IS NOT NULL
    ON CONFLICT (member_id, badge) DO NOTHING
    RETURNING member_id
), push AS (
    INSERT INTO outbox (dedupe_key, channel, chat_id, member_id, kind, mode, marketing, quiet,
                        payload, state, attempts, next_attempt_at, created_at, updated_at)
    SELECT f.dedupe_key, f.channel, f.chat_id, f.member_id, 'flashsale-code', 'send',
           f.marketing, f.quiet,
           CASE WHEN b.member_id IS NOT NULL THEN f.payload_badged::json ELSE f.payload::json END,
           'pending', 0, f.not_before, f.at, f.at
    FROM ins JOIN facts f ON f.code = ins.claim_code
    LEFT JOIN badge b ON b.member_id = f.member_id
    WHERE f.dedupe_key IS NOT NULL AND EXISTS (
        SELECT 1 FROM identities a WHERE a.channel = f.channel AND a.external_id = f.chat_id
          AND NOT a.unreachable
          AND a.private_chat_at IS NOT NULL  -- known to have written privately (else the link)
    )
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING dedupe_key
)
SELECT f.i, f.member, f.held, f.prior, f.merged_into, ins.unit, won.claimed, won.stock,
       won.announce_id IS NOT NULL AS announced,
       EXISTS (SELECT 1 FROM push p WHERE p.dedupe_key = f.dedupe_key) AS pushed,
       EXISTS (SELECT 1 FROM badge b WHERE b.member_id = f.member_id) AS badged,
       cur.state, cur.claimed AS was_claimed, cur.stock AS was_stock, cur.ends_at,
       cur.per_member_limit
FROM facts f CROSS JOIN cur
LEFT JOIN ins ON ins.claim_code = f.code
LEFT JOIN won ON won.i = f.i
ORDER BY f.i
"""


async def claim_many(
    db: Database, sale_id: int, community_id: int, asks: Sequence[Ask], badge: str | None = None
) -> list[Fast]:
    """One unit for each ask, in ONE statement, granted in their order (PostgreSQL only; the
    callers checked the opening time). The members must be distinct, and so must the message
    keys (a second ask of a member waits for the next statement, whose snapshot sees the
    first). Each ask gets its own answer, as `claim` gives it (MERGED instead of raising
    MemberMerged). Raises when the statement fails (a unique key taken meanwhile: nothing of
    it was written)."""
    pushes = [a.push for a in asks]
    args = (
        sale_id,
        community_id,
        [a.member_id for a in asks],
        [a.code for a in asks],
        [a.message_key for a in asks],
        [a.now for a in asks],
        [p.channel if p else None for p in pushes],
        [p.chat_id if p else None for p in pushes],
        [p.dedupe_key[:160] if p else None for p in pushes],
        [p.marketing if p else False for p in pushes],
        [p.quiet if p else False for p in pushes],
        [json.dumps(p.payload) if p else None for p in pushes],
        [json.dumps(p.payload_badged) if p else None for p in pushes],
        [p.not_before if p else a.now for p, a in zip(pushes, asks, strict=True)],
        badge,
        max(a.now for a in asks),
    )
    async with db.driver() as conn:
        rows = await conn.fetch(_CLAIM_MANY, *args)
    if not rows:  # no such sale
        return [Fast(REFUSED, "closed") for _ in asks]
    return [_decided(row, a.code, a.now) for row, a in zip(rows, asks, strict=True)]


# At most this many claims in one statement (the rest go in the next one).
MAX_BATCH = 500


@dataclass(eq=False)
class Handoff:
    """For a caller cancelled after its claim was sent (a stop's grace ran out): the statement
    runs on (another task sends it) and may commit the unit, so the caller must not settle its
    Redis unit itself (`taken`); `settle` gets the claim's answer when it comes (None: the
    batch failed and the claim never ran alone)."""

    settle: Callable[[Fast | None], Awaitable[None]]
    taken: bool = False


_SETTLING: set[asyncio.Future[None]] = set()


def _settle_later(
    settle: Callable[[Fast | None], Awaitable[None]], done: asyncio.Future[Any]
) -> None:
    answer = None if done.cancelled() or done.exception() is not None else done.result()
    task = asyncio.ensure_future(settle(answer))
    _SETTLING.add(task)  # (a task nobody holds may be collected before it runs)
    task.add_done_callback(_SETTLING.discard)


@dataclass(eq=False)
class _Waiting:
    ask: Ask
    done: asyncio.Future[Fast | None]  # None: the batch failed, decide alone


@dataclass(eq=False)
class _Group:
    """A sale's winners in this process: the queue, and the task sending it (None: idle)."""

    queue: list[_Waiting] = field(default_factory=list)
    runner: asyncio.Future[None] | None = None


_GroupKey = tuple[int, int, str | None]  # sale, community, badge
_GROUPS: WeakKeyDictionary[Database, dict[_GroupKey, _Group]] = WeakKeyDictionary()


async def claim_grouped(
    db: Database,
    sale_id: int,
    community_id: int,
    ask: Ask,
    badge: str | None = None,
    handoff: Handoff | None = None,
) -> Fast:
    """`claim`, grouped: the ask goes in the sale's queue in this process; when no statement of
    the sale is under way it is sent at once, else with all that arrive meanwhile in the next
    one (claim_many). The answer is the ask's own; should the batch's statement fail, this
    claim runs alone (`claim`), so one failing ask fails no other. Raises MemberMerged as
    `claim` does."""
    groups = _GROUPS.setdefault(db, {})
    key = (sale_id, community_id, badge)
    group = groups.get(key)
    if group is None:
        group = groups[key] = _Group()
    waiting = _Waiting(ask, asyncio.get_running_loop().create_future())
    group.queue.append(waiting)
    if group.runner is None:
        group.runner = asyncio.ensure_future(_send(db, key, group))
    try:
        done = await asyncio.shield(waiting.done)
    except asyncio.CancelledError:
        if waiting in group.queue:  # not sent yet: it never will be
            group.queue.remove(waiting)
        elif handoff is not None:
            handoff.taken = True
            waiting.done.add_done_callback(functools.partial(_settle_later, handoff.settle))
        raise
    if done is None:
        done = await claim(
            db, sale_id, community_id, ask.member_id, ask.now, ask.code, ask.message_key,
            ask.push, badge,
        )  # fmt: skip
    if done.status == MERGED:
        raise MemberMerged(ask.member_id)  # linked away: the middleware runs it as the survivor
    return done


async def _send(db: Database, key: _GroupKey, group: _Group) -> None:
    """Send the sale's queue, a statement at a time, until it is empty."""
    sale_id, community_id, badge = key
    batch: list[_Waiting] = []
    try:
        while group.queue:
            batch, later = [], []
            members: set[int] = set()
            messages: set[str] = set()
            for waiting in group.queue:
                ask = waiting.ask
                if (
                    len(batch) >= MAX_BATCH
                    or ask.member_id in members
                    or (ask.message_key is not None and ask.message_key in messages)
                ):
                    later.append(waiting)
                    continue
                batch.append(waiting)
                members.add(ask.member_id)
                if ask.message_key is not None:
                    messages.add(ask.message_key)
            group.queue = later
            answers: Sequence[Fast | None]
            try:
                answers = await claim_many(db, sale_id, community_id, [w.ask for w in batch], badge)
            except Exception:
                log.warning(
                    "flash sale batch failed sale=%s claims=%s: each decided alone",
                    sale_id,
                    len(batch),
                    exc_info=True,
                )
                answers = [None] * len(batch)
            for waiting, answer in zip(batch, answers, strict=True):
                if not waiting.done.done():
                    waiting.done.set_result(answer)
            batch = []
    finally:
        group.runner = None
        stopped = [w for w in batch + group.queue if not w.done.done()]
        if stopped:  # (only when this task was cancelled: the loop is closing)
            group.queue = []
            for waiting in stopped:
                waiting.done.set_exception(RuntimeError("flash sale claims stopped"))
        groups = _GROUPS.get(db)
        if groups is not None and groups.get(key) is group:
            del groups[key]
