"""Putting pushes in the outbox: to a member (their newest reachable app, in their language)
or to a group chat, with each kind's policy (muting, quiet hours).

Call these inside the transaction of the push's cause; the row commits or rolls back with it.
Imports only bot.core and storage, so the core (and handlers, through it) can use it too.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.i18n import Translator, pick_locale
from bot.core.messages import Reply
from bot.jobs.quiet import quiet_until
from storage import members, outbox
from storage.models import Identity, Member

if TYPE_CHECKING:
    from bot.core.context import Services

Render = Callable[[Translator], Reply]


@dataclass(frozen=True)
class Policy:
    """What a kind of push must respect."""

    marketing: bool = False  # a member who sent /mute gets none
    quiet: bool = False  # found due during quiet hours, it waits for their end


POLICIES: dict[str, Policy] = {
    # Answers and notices the member is owed: always, at once.
    "invite-reward": Policy(),
    "invite-decision": Policy(),
    "tier-change": Policy(),
    "late-answer": Policy(),
    "staff-reply": Policy(),
    "flashsale-announce": Policy(),
    "counter-edit": Policy(),
    "ticket-new": Policy(),
    "ticket-followup": Policy(),
    "ticket-resolved": Policy(),
    "ticket-low-score": Policy(),
    "ticket-warning": Policy(),
    "ticket-escalated": Policy(),
    "ticket-apology": Policy(),
    "gift": Policy(),
    "flashsale-summary": Policy(),
    "flashsale-code": Policy(),  # a claim code won by a button pressed in a group
    # Nudges: service notices, but not at night.
    "reminder": Policy(quiet=True),
    "birthday": Policy(quiet=True),
    "tier-review": Policy(quiet=True),
    # Marketing: muted members get none, and never at night.
    "dormant": Policy(marketing=True, quiet=True),
    "campaign": Policy(marketing=True, quiet=True),
    "flashsale-push": Policy(marketing=True),
}


def policy(kind: str) -> Policy:
    """The policy of a known kind; an unknown kind is a programming error (KeyError)."""
    return POLICIES[kind]


def newest_reachable(
    accounts: Collection[Identity], channels: Collection[str] | None
) -> Identity | None:
    """The account the member used most recently that the apps can still deliver to."""
    usable = [
        a for a in accounts if not a.unreachable and (channels is None or a.channel in channels)
    ]
    return max(usable, key=lambda a: a.id, default=None)


async def push_to_member(
    session: AsyncSession,
    services: Services,
    member_id: int,
    kind: str,
    key: str,
    render: Render,
    *,
    channels: Collection[str] | None = None,
) -> int | None:
    """Queue `render(their translator)` for the member; returns the outbox row id.

    None when nothing was queued: `key` used already, the member muted (marketing kinds), or
    no account of theirs reachable (in `channels`, the apps that can send, when given).
    """
    found = await _recipient(session, member_id, kind, channels)
    if found is None:
        return None
    member, account = found
    t = Translator(pick_locale(member.locale, None, services.settings.default_locale))
    target = outbox.Target(account.channel, account.external_id, member_id)
    return await _enqueue(session, services, key, target, kind, render(t))


async def reachable(
    session: AsyncSession, member_id: int, kind: str, channels: Collection[str] | None = None
) -> bool:
    """Whether push_to_member would queue a push of `kind` (its key aside): asked before
    giving something that goes with the push, so nothing is given to someone it cannot reach."""
    return await _recipient(session, member_id, kind, channels) is not None


async def _recipient(
    session: AsyncSession, member_id: int, kind: str, channels: Collection[str] | None
) -> tuple[Member, Identity] | None:
    member = await members.get(session, member_id)
    if member is None or (policy(kind).marketing and member.muted_at is not None):
        return None
    account = newest_reachable(await members.identities_of(session, member_id), channels)
    return None if account is None else (member, account)


async def push_to_chat(
    session: AsyncSession,
    services: Services,
    target: outbox.Target,
    kind: str,
    key: str,
    reply: Reply,
) -> int | None:
    """Queue `reply` for a chat (a group post, or a person's chat already known)."""
    return await _enqueue(session, services, key, target, kind, reply)


async def _enqueue(
    session: AsyncSession,
    services: Services,
    key: str,
    target: outbox.Target,
    kind: str,
    reply: Reply,
) -> int | None:
    rule = policy(kind)
    now = services.clock.now()
    nudges = services.rules.nudges
    later = (
        quiet_until(now, services.settings.tz, nudges.quiet_start, nudges.quiet_end)
        if rule.quiet
        else None
    )
    return await outbox.enqueue(
        session,
        key,
        target,
        kind,
        reply.to_json(),
        now,
        marketing=rule.marketing,
        quiet=rule.quiet,
        not_before=later,
    )
