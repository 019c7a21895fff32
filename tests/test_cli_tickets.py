"""`memberbot admin tickets ...` in-process on an SQLite file: list, show, assign, reply,
wait, resolve, and refusals as exit codes."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from bot.app import build_core
from bot.channels.console import ConsoleChat
from bot.cli import main
from bot.core.clock import FixedClock
from storage import members, roles
from tests.conftest import START, make_settings


async def seed(url: str) -> None:
    """Alice filed a complaint; Sam has the staff role."""
    core = await build_core(make_settings(url, None), clock=FixedClock(START))
    try:
        await ConsoleChat(core, "alice", "en").say("/complain the kettle leaks")
        await ConsoleChat(core, "sam", "en").say("help")
        async with core.services.db.transaction() as session:
            sam = await members.find_by_identity(session, "console", "sam")
            assert sam is not None
            await roles.grant(session, sam.id, roles.STAFF, 0, START)
    finally:
        await core.close()


@pytest.fixture
def cli(tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    shutil.copy(sqlite_template, tmp_path / "memberbot.db")
    url = f"sqlite+aiosqlite:///{tmp_path / 'memberbot.db'}"
    asyncio.run(seed(url))
    monkeypatch.setenv("MEMBERBOT_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["admin", "tickets", *argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_tickets_worked_from_the_command_line(cli):
    code, listed, _ = cli("list", "--state", "open")
    assert code == 0
    assert listed.startswith("C-000001 open other member 1 owner nobody due 2026-03-11T02:00")

    assert cli("assign", "C-000001", "console", "sam", "--by", "olga")[0] == 0
    code, replied, _ = cli("reply", "1", "A new kettle is on its way.", "--by", "olga")
    assert code == 0
    assert "staff: A new kettle is on its way." in replied
    assert cli("wait", "1", "Which order?")[0] == 0
    assert cli("resolve", "1")[0] == 0

    code, shown, _ = cli("show", "C-000001")
    assert code == 0
    trail = [line.split("] ", 1)[1] for line in shown.splitlines() if "] " in line]
    assert trail == [
        "filed (other)",
        "assigned to sam",
        "replied",
        "waiting on the member",
        "resolved",
    ]
    assert shown.splitlines()[0].startswith("C-000001 resolved other member 1 owner sam")


def test_refusals_exit_1_and_2(cli):
    code, _, err = cli("show", "C-000042")
    assert (code, err.strip()) == (1, "memberbot: unknown ticket")
    code, _, err = cli("assign", "1", "console", "alice")
    assert (code, err.strip()) == (2, "memberbot: staff must be a member with the staff role")
    cli("resolve", "1")
    code, _, err = cli("resolve", "1")
    assert (code, err.strip()) == (1, "memberbot: C-000001 is resolved already.")
