"""The contract every chat channel fulfils; kept small on purpose (see DESIGN.md)."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web


class Channel(Protocol):
    name: str

    def mount(self, app: web.Application) -> None:
        """Add the channel's webhook routes and its start/stop hooks to the server."""
        ...
