"""Photos sent with complaints: fetched from the app at once (WeChat keeps an image only 3
days, Telegram serves files up to 20 MB) and kept under the media folder."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from bot.core.context import Services

# What the first bytes of an image say it is; anything else is not kept.
_KINDS = (
    (b"\xff\xd8\xff", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"GIF8", ".gif"),
    (b"RIFF", ".webp"),
)


def _suffix(data: bytes) -> str | None:
    return next((suffix for magic, suffix in _KINDS if data.startswith(magic)), None)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def keep_photo(services: Services, channel: str, media_id: str) -> str | None:
    """Fetch the photo `media_id` of `channel` and store it; its path, or None when the app
    would not give it, it is over `complaints.photo_max_bytes`, or it is no image."""
    limit = services.rules.complaints.photo_max_bytes
    data = await services.senders.media_fetcher(channel).fetch_media(media_id, limit)
    suffix = _suffix(data) if data else None
    if data is None or suffix is None:
        return None
    path = services.settings.media_dir / "complaints" / f"{uuid.uuid4().hex}{suffix}"
    await asyncio.to_thread(_write, path, data)
    return str(path)


def _unlink(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


async def drop_photos(services: Services, paths: list[str]) -> None:
    """Delete kept photos (an erased member's); only files under the media folder, so a
    path that came from elsewhere (an app's file id) is never touched."""
    root = services.settings.media_dir.resolve()
    inside = [p for p in (Path(x).resolve() for x in paths) if p.is_relative_to(root)]
    await asyncio.to_thread(_unlink, inside)
