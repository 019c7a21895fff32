"""Operator actions on communities, roles and held invite rewards, validated in one place.

The HTTP API and the `memberbot admin` CLI both call these, so both accept, refuse and answer
alike. Results are JSON-ready dicts; a refusal is an `OperatorError` carrying the HTTP status
that says why (422 invalid field, 404 unknown, 409 conflict).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Services
from bot.core.messages import clean_text
from bot.settings import LOCALES
from handlers import invites as invite_rewards
from handlers.orders import CHANNELS
from storage import communities, invites, members, roles
from storage.models import Community, Invite, Member, Role

SLUG = re.compile(r"[a-z0-9_-]{2,32}")
NAME_MAX, TAG_MAX, DESCRIPTION_MAX, URL_MAX, EXTERNAL_ID_MAX = 64, 32, 500, 512, 128
INVITE_STATUSES = (
    invites.REVIEW,
    invites.WAITING,
    invites.REWARDED,
    invites.REJECTED,
    invites.VOID,
)
# A Telegram group id is negative and fits the BIGINT column.
CHAT_ID_MIN = -(2**63)
# Fields a GET answers with that a PUT may carry back unchanged (a read-modify-write).
READ_ONLY = ("slug", "members")
ROLE_FIELDS = ("channel", "external_id", "role", "community")


class OperatorError(Exception):
    """An action refused; `status` is its HTTP code, `extra` more JSON for the answer."""

    status = 409

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class Invalid(OperatorError):
    status = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)


class NotFound(OperatorError):
    status = 404


class Conflict(OperatorError):
    status = 409


# -- communities --------------------------------------------------------------------------


def check_slug(raw: object) -> str:
    if not isinstance(raw, str) or not SLUG.fullmatch(raw):
        raise Invalid("slug", "slug must be 2 to 32 characters of a-z, 0-9, - and _")
    return raw


def _one_line(raw: str) -> str:
    """Control characters dropped and any run of whitespace (newlines too) made one space."""
    return " ".join(clean_text(raw, len(raw) + 1).split())


def _names(raw: object) -> dict[str, str]:
    message = f"names must be an object of language ({', '.join(LOCALES)}) to name"
    if not isinstance(raw, dict) or not raw:
        raise Invalid("names", message)
    names: dict[str, str] = {}
    for locale, name in raw.items():
        if locale not in LOCALES:
            raise Invalid("names", message)
        text = _one_line(name) if isinstance(name, str) else ""
        if not 1 <= len(text) <= NAME_MAX:
            raise Invalid("names", f"names.{locale} must be text of 1 to {NAME_MAX} characters")
        names[locale] = text
    return names


def _text(field: str, raw: object, limit: int, *, one_line: bool) -> str:
    if not isinstance(raw, str):
        raise Invalid(field, f"{field} must be text of at most {limit} characters")
    text = _one_line(raw) if one_line else clean_text(raw, len(raw) + 1)
    if len(text) > limit:
        raise Invalid(field, f"{field} must be text of at most {limit} characters")
    return text


def _chat_id(raw: object) -> int | None:
    if raw is None:
        return None
    if not isinstance(raw, int) or isinstance(raw, bool) or not CHAT_ID_MIN <= raw < 0:
        raise Invalid(
            "telegram_chat_id",
            "telegram_chat_id must be a negative whole number (a Telegram group id) or null",
        )
    return raw


def _qr(raw: object) -> str | None:
    if raw is None:
        return None
    message = f"wechat_qr must be an http or https URL of at most {URL_MAX} characters, or null"
    if not isinstance(raw, str) or not 1 <= len(raw) <= URL_MAX:
        raise Invalid("wechat_qr", message)
    if not raw.isprintable() or any(ch.isspace() for ch in raw):
        raise Invalid("wechat_qr", message)
    try:
        parts = urlsplit(raw)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise Invalid("wechat_qr", message) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("wechat_qr", message)
    return raw


def parse_community(data: Mapping[str, object], tiers: tuple[str, ...]) -> dict[str, Any]:
    """The community fields given in `data`, cleaned and checked; read-only ones left out."""
    unknown = [k for k in data if k not in communities.FIELDS and k not in READ_ONLY]
    if unknown:
        raise Invalid(unknown[0], f"{unknown[0][:40]} is not a community field")
    values: dict[str, Any] = {}
    if "names" in data:
        values["names"] = _names(data["names"])
    if "tag" in data:
        values["tag"] = _text("tag", data["tag"], TAG_MAX, one_line=True)
    if "min_tier" in data:
        if data["min_tier"] not in tiers:
            raise Invalid("min_tier", f"min_tier must be one of {', '.join(tiers)}")
        values["min_tier"] = data["min_tier"]
    if "telegram_chat_id" in data:
        values["telegram_chat_id"] = _chat_id(data["telegram_chat_id"])
    if "wechat_qr" in data:
        values["wechat_qr"] = _qr(data["wechat_qr"])
    if "description" in data:
        values["description"] = _text(
            "description", data["description"], DESCRIPTION_MAX, one_line=False
        )
    if "active" in data:
        if not isinstance(data["active"], bool):
            raise Invalid("active", "active must be true or false")
        values["active"] = data["active"]
    return values


def community_json(community: Community, joined: int) -> dict[str, Any]:
    return {
        "slug": community.slug,
        "names": dict(community.names or {}),
        "tag": community.tag,
        "min_tier": community.min_tier,
        "telegram_chat_id": community.telegram_chat_id,
        "wechat_qr": community.wechat_qr,
        "description": community.description,
        "active": community.active,
        "members": joined,
    }


async def list_communities(services: Services) -> list[dict[str, Any]]:
    """Every community, archived ones too (an operator may bring one back)."""
    async with services.db.reader() as session:
        found = await communities.listing(session, active_only=False)
        counts = await communities.member_counts(session)
        return [community_json(c, counts.get(c.id, 0)) for c in found]


async def get_community(services: Services, slug: str) -> dict[str, Any]:
    async with services.db.reader() as session:
        found = await _community(session, slug)
        return community_json(found, await communities.member_count(session, found.id))


async def _community(session: AsyncSession, slug: str) -> Community:
    found = None
    if SLUG.fullmatch(slug):
        found = await communities.by_slug(session, slug, active_only=False)
    if found is None:
        raise NotFound(f"unknown community {slug[:32]}")
    return found


async def save_community(
    services: Services, slug: str, data: Mapping[str, object], *, exists: bool | None = None
) -> tuple[dict[str, Any], bool]:
    """Create the community or change the fields given; True when created.

    `exists` True: only an update (404 otherwise); False: only a creation (409 otherwise).
    """
    check_slug(slug)
    values = parse_community(data, tuple(t.name for t in services.rules.tiers))
    if "slug" in data and data["slug"] != slug:
        raise Invalid("slug", "slug in the body must be the one in the path")
    try:
        return await _save_once(services, slug, values, exists)
    except IntegrityError:
        # A community made, or a chat id taken, by another request between our check and our
        # write fails the unique constraint; a second round sees it and answers accordingly.
        try:
            return await _save_once(services, slug, values, exists)
        except IntegrityError:
            raise Conflict(f"community {slug} was changed at the same time; try again") from None


async def _save_once(
    services: Services, slug: str, values: dict[str, Any], exists: bool | None
) -> tuple[dict[str, Any], bool]:
    async with services.db.transaction() as session:
        found = await communities.by_slug(session, slug, active_only=False)
        _check_save(slug, found, values, exists)
        await _check_chat_free(session, slug, values.get("telegram_chat_id"))
        saved, created = await communities.upsert(session, slug, values, services.clock.now())
        return community_json(saved, await communities.member_count(session, saved.id)), created


def _check_save(
    slug: str, found: Community | None, values: dict[str, Any], exists: bool | None
) -> None:
    if found is None and exists is True:
        raise NotFound(f"unknown community {slug}")
    if found is not None and exists is False:
        raise Conflict(f"community {slug} already exists")
    if found is None and "names" not in values:
        raise Invalid("names", "names is required to create a community")


async def _check_chat_free(session: AsyncSession, slug: str, chat_id: int | None) -> None:
    if chat_id is None:
        return
    holder = await communities.by_telegram_chat(session, chat_id)
    if holder is not None and holder.slug != slug:
        raise Conflict(f"telegram_chat_id {chat_id} belongs to community {holder.slug}")


async def archive_community(services: Services, slug: str) -> dict[str, Any]:
    """Hide the community from members; its memberships and moderators are kept."""
    async with services.db.transaction() as session:
        found = await _community(session, slug)
        saved, _ = await communities.upsert(
            session, found.slug, {"active": False}, services.clock.now()
        )
        return community_json(saved, await communities.member_count(session, saved.id))


# -- roles --------------------------------------------------------------------------------


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


def parse_role(data: Mapping[str, object]) -> tuple[str, str, str, str | None]:
    """(channel, external_id, role, community slug or None) of a grant or a revoke."""
    unknown = [k for k in data if k not in ROLE_FIELDS]
    if unknown:
        raise Invalid(unknown[0], f"{unknown[0][:40]} is not a role field")
    channel, external_id, role = data.get("channel"), data.get("external_id"), data.get("role")
    community = data.get("community")
    if channel not in CHANNELS:
        raise Invalid("channel", f"channel must be one of {', '.join(CHANNELS)}")
    if (
        not isinstance(external_id, str)
        or not 1 <= len(external_id) <= EXTERNAL_ID_MAX
        # Control characters and lone surrogates: no app has such ids, and the database
        # drivers refuse them (NUL on PostgreSQL, surrogates on both).
        or any(unicodedata.category(ch) in ("Cc", "Cs") for ch in external_id)
    ):
        raise Invalid(
            "external_id",
            f"external_id must be text of 1 to {EXTERNAL_ID_MAX} characters, no control characters",
        )
    if role not in roles.ROLES:
        raise Invalid("role", f"role must be one of {', '.join(roles.ROLES)}")
    if community is not None and not isinstance(community, str):
        raise Invalid("community", "community must be a community's slug")
    if role == roles.MODERATOR and not community:
        raise Invalid("community", "community is required for a moderator")
    if role != roles.MODERATOR and community:
        raise Invalid("community", f"community must be left out for {role} (it is everywhere)")
    return str(channel), external_id, str(role), community or None


async def _grantee(
    session: AsyncSession, data: Mapping[str, object]
) -> tuple[Member, str, Community | None]:
    channel, external_id, role, slug = parse_role(data)
    member = await members.find_by_identity(session, channel, external_id)
    if member is None:
        raise NotFound("unknown member")
    community = await _community(session, slug) if slug is not None else None
    return member, role, community


async def grant_role(services: Services, data: Mapping[str, object]) -> tuple[dict[str, Any], bool]:
    """Give a member a role; True when granted now, False when they had it already."""
    async with services.db.transaction() as session:
        member, role, community = await _grantee(session, data)
        where = community.id if community is not None else roles.EVERYWHERE
        granted = await roles.grant(session, member.id, role, where, services.clock.now())
        held = Role(member_id=member.id, role=role, community_id=where)
        slugs = {community.id: community.slug} if community is not None else {}
        return await _role_json(session, held, slugs), granted


async def revoke_role(services: Services, data: Mapping[str, object]) -> dict[str, Any]:
    async with services.db.transaction() as session:
        member, role, community = await _grantee(session, data)
        where = community.id if community is not None else roles.EVERYWHERE
        if not await roles.revoke(session, member.id, role, where):
            raise NotFound("role not held")
        held = Role(member_id=member.id, role=role, community_id=where)
        slugs = {community.id: community.slug} if community is not None else {}
        return await _role_json(session, held, slugs)


# -- held invite rewards ------------------------------------------------------------------


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


def check_invite_status(raw: object) -> str:
    if raw not in INVITE_STATUSES:
        raise Invalid("status", f"status must be one of {', '.join(INVITE_STATUSES)}")
    return str(raw)


async def list_invites(services: Services, status: str) -> list[dict[str, Any]]:
    """Invites in one state, newest first (at most 200)."""
    async with services.db.reader() as session:
        found = await invites.listing(session, check_invite_status(status))
    return [invite_json(i) for i in found]


async def decide_invite(services: Services, invite_id: int, approve: bool) -> dict[str, Any]:
    """Approve (pay once, tell the inviter) or reject a reward held for review."""
    if not 1 <= invite_id < 2**63:
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
    return invite_json(invite)
