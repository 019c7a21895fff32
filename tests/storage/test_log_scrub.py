"""A failed statement, once logged, carries no bound values nor PostgreSQL's DETAIL values."""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable, Iterator

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from bot import logs
from bot.core.clock import FixedClock
from storage.db import Database
from storage.models import Identity

SECRET = "oSecretOpenid123"


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    """What `memberbot`'s logging writes, for the logger "memberbot.test"."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("level=%(levelname)s %(message)s"))
    logger = logging.getLogger("memberbot.test")
    logger.addHandler(handler)
    logs.install(logger)
    try:
        yield out
    finally:
        logger.removeHandler(handler)


async def test_a_failed_statement_logs_no_personal_values(
    db: Database,
    clock: FixedClock,
    new_member: Callable[..., Awaitable[int]],
    log_text: io.StringIO,
) -> None:
    member_id = await new_member()
    row = {"member_id": member_id, "channel": "wechat", "external_id": SECRET}
    async with db.transaction() as session:
        await session.execute(insert(Identity).values(**row, created_at=clock.now()))

    with pytest.raises(IntegrityError) as failed:
        async with db.transaction() as session:
            await session.execute(insert(Identity).values(**row, created_at=clock.now()))
    try:
        raise RuntimeError("request failed") from failed.value
    except RuntimeError:
        logging.getLogger("memberbot.test").exception("request failed: %s", failed.value)

    written = log_text.getvalue()
    assert "parameters hidden" in str(failed.value)  # the engine hides bound values
    assert "IntegrityError" in written and "Traceback" in written
    assert SECRET not in written


def test_the_cli_installs_the_filter() -> None:
    from bot.cli import configure_logging

    root = logging.getLogger()
    before = list(root.handlers)
    added = logging.StreamHandler(io.StringIO())
    root.addHandler(added)
    try:
        configure_logging()
        assert any(isinstance(f, logs.Scrubbed) for f in added.filters)
    finally:
        root.removeHandler(added)
        assert root.handlers == before
