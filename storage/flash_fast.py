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
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.db import Database
from storage.errors import MemberMerged

WON, REFUSED, AGAIN, CONFLICT = "won", "refused", "again", "conflict"


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
    held = int(row["held"])
    if row["unit"] is None and row["merged_into"] is not None:
        raise MemberMerged(member_id)  # linked away: the middleware runs it as the survivor
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
