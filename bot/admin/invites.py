"""Operator actions on invites: list them by state, decide the rewards held for review."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.admin import fields
from bot.admin.errors import Conflict, NotFound
from bot.core.context import Services
from handlers import invite_rewards
from storage import invites, members
from storage.models import Invite

STATUSES = (invites.REVIEW, invites.WAITING, invites.REWARDED, invites.REJECTED, invites.VOID)


def invite_json(invite: Invite) -> dict[str, Any]:
    return {
        "id": invite.id,
        "inviter_id": invite.inviter_id,
        "invitee_id": invite.invitee_id,
        "via": invite.via,
        "status": invite.status,
        "created_at": invite.created_at.isoformat(),
        "decided_at": invite.decided_at.isoformat() if invite.decided_at else None,
        "reward_day": invite.reward_day.isoformat() if invite.reward_day else None,
    }


@dataclass(frozen=True)
class InviteView:
    """An invite and who its two members are in the apps (`channel:external_id`)."""

    invite: dict[str, Any]
    inviter: tuple[str, ...]
    invitee: tuple[str, ...]


async def _accounts(session: AsyncSession, member_id: int) -> tuple[str, ...]:
    return tuple(
        f"{i.channel}:{i.external_id}" for i in await members.identities_of(session, member_id)
    )


async def _view(session: AsyncSession, invite: Invite) -> InviteView:
    return InviteView(
        invite_json(invite),
        await _accounts(session, invite.inviter_id),
        await _accounts(session, invite.invitee_id),
    )


async def list_invites(services: Services, status: str) -> list[InviteView]:
    """Invites in one state, newest first (at most 200)."""
    wanted = fields.choice("status", status, STATUSES)
    async with services.db.reader() as session:
        return [await _view(session, i) for i in await invites.listing(session, wanted)]


async def decide_invite(services: Services, invite_id: int, approve: bool) -> InviteView:
    """Approve (pay once, tell the inviter) or reject a reward held for review."""
    if not 1 <= invite_id <= fields.BIGINT_MAX:
        raise NotFound(f"unknown invite {invite_id}")
    settled = await invite_rewards.review(services, invite_id, approve)
    async with services.db.reader() as session:
        invite = await invites.get(session, invite_id)
        if invite is None:
            raise NotFound(f"unknown invite {invite_id}")
        if settled is None:
            raise Conflict(
                f"invite {invite_id} is not in review (it is {invite.status})",
                invite=invite_json(invite),
            )
        return await _view(session, invite)
