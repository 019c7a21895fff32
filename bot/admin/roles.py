"""Operator actions on roles: admin and staff everywhere, moderators of one community."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.admin import fields
from bot.admin.communities import find_community
from bot.admin.errors import Invalid, NotFound
from bot.core.context import Services
from storage import communities, members, roles
from storage.models import Community, Role

ROLE_FIELDS = ("channel", "external_id", "role", "community")


@dataclass(frozen=True)
class RoleRequest:
    """Who gets (or loses) which role, where; `community` only for a moderator."""

    channel: str
    external_id: str
    role: str
    community: str | None


def parse_role(data: Mapping[str, object]) -> RoleRequest:
    """The grant or revoke in `data`, checked."""
    fields.no_unknown(data, ROLE_FIELDS, "role")
    channel = fields.channel(data.get("channel"))
    external_id = fields.external_id(data.get("external_id"))
    role = fields.choice("role", data.get("role"), roles.ROLES)
    community = data.get("community")
    if community is not None and not isinstance(community, str):
        raise Invalid("community", "community must be a community's slug")
    if role == roles.MODERATOR and not community:
        raise Invalid("community", "community is required for a moderator")
    if role != roles.MODERATOR and community:
        raise Invalid("community", f"community must be left out for {role} (it is everywhere)")
    return RoleRequest(channel, external_id, role, community or None)


async def _role_json(session: AsyncSession, role: Role, slugs: Mapping[int, str]) -> dict[str, Any]:
    accounts = await members.identities_of(session, role.member_id)
    return {
        "member_id": role.member_id,
        "identities": [{"channel": i.channel, "external_id": i.external_id} for i in accounts],
        "role": role.role,
        "community": slugs.get(role.community_id),
    }


async def list_roles(services: Services) -> list[dict[str, Any]]:
    async with services.db.reader() as session:
        slugs = {c.id: c.slug for c in await communities.listing(session, active_only=False)}
        return [await _role_json(session, r, slugs) for r in await roles.listing(session)]


@dataclass(frozen=True)
class _Grant:
    held: Role
    community: Community | None

    def slugs(self) -> dict[int, str]:
        return {self.community.id: self.community.slug} if self.community is not None else {}


async def _grant_of(session: AsyncSession, data: Mapping[str, object]) -> _Grant:
    wanted = parse_role(data)
    member = await members.find_by_identity(session, wanted.channel, wanted.external_id)
    if member is None:
        raise NotFound("unknown member")
    community = None
    if wanted.community is not None:
        community = await find_community(session, wanted.community)
    where = community.id if community is not None else roles.EVERYWHERE
    return _Grant(Role(member_id=member.id, role=wanted.role, community_id=where), community)


async def grant_role(services: Services, data: Mapping[str, object]) -> tuple[dict[str, Any], bool]:
    """Give a member a role; True when granted now, False when they had it already."""
    async with services.db.transaction() as session:
        grant = await _grant_of(session, data)
        held = grant.held
        granted = await roles.grant(
            session, held.member_id, held.role, held.community_id, services.clock.now()
        )
        return await _role_json(session, held, grant.slugs()), granted


async def revoke_role(services: Services, data: Mapping[str, object]) -> dict[str, Any]:
    async with services.db.transaction() as session:
        grant = await _grant_of(session, data)
        held = grant.held
        if not await roles.revoke(session, held.member_id, held.role, held.community_id):
            raise NotFound("role not held")
        return await _role_json(session, held, grant.slugs())
