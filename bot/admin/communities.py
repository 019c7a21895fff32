"""Operator actions on interest communities: list, read, create or change, archive."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.admin import fields
from bot.admin.errors import Conflict, Invalid, NotFound
from bot.core.context import Services
from bot.settings import LOCALES
from storage import communities
from storage.models import Community

NAME_MAX, TAG_MAX, DESCRIPTION_MAX, URL_MAX = 64, 32, 500, 512
# A Telegram group id is negative and fits the BIGINT column.
CHAT_ID_MIN = -(2**63)
# Fields a GET answers with that a PUT may carry back unchanged (a read-modify-write).
READ_ONLY = ("slug", "members")


def _names(raw: object) -> dict[str, str]:
    message = f"names must be an object of language ({', '.join(LOCALES)}) to name"
    if not isinstance(raw, dict) or not raw:
        raise Invalid("names", message)
    names: dict[str, str] = {}
    for locale, name in raw.items():
        if locale not in LOCALES:
            raise Invalid("names", message)
        text = fields.one_line(name) if isinstance(name, str) else ""
        if not 1 <= len(text) <= NAME_MAX:
            raise Invalid("names", f"names.{locale} must be text of 1 to {NAME_MAX} characters")
        names[locale] = text
    return names


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


def _active(raw: object) -> bool:
    if not isinstance(raw, bool):
        raise Invalid("active", "active must be true or false")
    return raw


def parse_community(data: Mapping[str, object], tiers: tuple[str, ...]) -> dict[str, Any]:
    """The community fields given in `data`, cleaned and checked; read-only ones left out."""
    fields.no_unknown(data, (*communities.FIELDS, *READ_ONLY), "community")
    checks: dict[str, Any] = {
        "names": _names,
        "tag": lambda v: fields.text("tag", v, TAG_MAX),
        "min_tier": lambda v: fields.choice("min_tier", v, tiers),
        "telegram_chat_id": _chat_id,
        "wechat_qr": _qr,
        "description": lambda v: fields.text("description", v, DESCRIPTION_MAX, single_line=False),
        "active": _active,
    }
    return {name: check(data[name]) for name, check in checks.items() if name in data}


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
        found = await find_community(session, slug)
        return community_json(found, await communities.member_count(session, found.id))


async def find_community(session: AsyncSession, slug: str) -> Community:
    """The community by slug, archived or not; NotFound otherwise."""
    found = None
    if fields.SLUG.fullmatch(slug):
        found = await communities.by_slug(session, slug, active_only=False)
    if found is None:
        raise NotFound(f"unknown community {slug[:32]}")
    return found


async def save_community(
    services: Services, slug: str, data: Mapping[str, object], *, exists: bool | None = None
) -> tuple[dict[str, Any], bool]:
    """Create the community or change the fields given; True when created.

    `exists` True: only an update (NotFound otherwise); False: only a creation (Conflict).
    """
    fields.slug(slug)
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
        found = await find_community(session, slug)
        saved, _ = await communities.upsert(
            session, found.slug, {"active": False}, services.clock.now()
        )
        return community_json(saved, await communities.member_count(session, saved.id))
