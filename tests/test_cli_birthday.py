"""`memberbot admin member birthday`: an operator's correction from the terminal (item 10)."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

import pytest

from bot.app import build_core
from bot.channels.console import ConsoleChat
from bot.cli import main
from bot.core.clock import FixedClock
from tests.conftest import START, make_settings


async def _alice_born_on(url: str, said: str) -> None:
    core = await build_core(make_settings(url, None), clock=FixedClock(START))
    try:
        alice = ConsoleChat(core, "alice", "en")
        await alice.say(f"/birthday {said}")
        await alice.say("yes")
    finally:
        await core.close()


@pytest.fixture
def database(tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    shutil.copy(sqlite_template, tmp_path / "memberbot.db")
    url = f"sqlite+aiosqlite:///{tmp_path / 'memberbot.db'}"
    monkeypatch.setenv("MEMBERBOT_DATABASE_URL", url)
    asyncio.run(_alice_born_on(url, "05-20"))
    return url


def test_correct_then_show(database, capsys, caplog):
    caplog.set_level(logging.INFO, logger="memberbot.audit")

    corrected = main(["admin", "member", "birthday", "console", "alice", "6月21日", "--by", "jane"])
    said = capsys.readouterr()
    shown = main(["admin", "member", "show", "console", "alice"])
    show = capsys.readouterr().out

    assert (corrected, said.out, said.err) == (0, "birthday 05-20 -> 06-21 (by jane)\n", "")
    assert shown == 0 and " birthday=06-21 " in show
    assert [r.getMessage() for r in caplog.records if r.name == "memberbot.audit"] == [
        "birthday corrected member=1 account=console:alice from=05-20 to=06-21 by='jane'"
    ]


def test_a_dash_clears_and_a_bad_day_is_a_usage_error(database, capsys):
    cleared = main(["admin", "member", "birthday", "console", "alice", "-", "--by", "jane"])
    cleared_out = capsys.readouterr().out
    bad = main(["admin", "member", "birthday", "console", "alice", "02-30", "--by", "jane"])
    bad_err = capsys.readouterr().err

    assert (cleared, cleared_out) == (0, "birthday 05-20 -> - (by jane)\n")
    assert (bad, bad_err) == (
        2,
        "memberbot: birthday must be a real day as MM-DD, e.g. 05-20\n",
    )
