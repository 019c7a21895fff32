"""The rules' names written into the check-in statement read back as written, whatever the
server's standard_conforming_strings (a tier name comes from the operator's rules file)."""

from __future__ import annotations

import asyncpg
import pytest

from storage import checkin_fast
from tests.conftest import PG_URL

NAMES = ["gold", "o'neil", "back\\slash", "end\\'; SELECT 1 --", "金卡"]


@pytest.mark.parametrize("conforming", ["on", "off"])
async def test_text_literals_read_back_as_written(postgres_ready, conforming: str) -> None:
    if isinstance(postgres_ready, Exception):
        pytest.fail(f"PostgreSQL is needed: {postgres_ready}")
    conn = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f"SET standard_conforming_strings = {conforming}")
        for name in NAMES:
            assert await conn.fetchval(f"SELECT {checkin_fast._text(name)}") == name
        array = checkin_fast._array(tuple(NAMES), "text")
        assert await conn.fetchval(f"SELECT {array}") == NAMES
    finally:
        await conn.close()
