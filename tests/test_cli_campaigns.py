"""`memberbot admin campaign create|list|show` in this process, on its own SQLite file."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from bot.app import build_core
from bot.channels.console import ConsoleChat
from bot.cli import main
from tests.conftest import make_settings


@pytest.fixture
def database(tmp_path, sqlite_template, monkeypatch):
    shutil.copy(sqlite_template, tmp_path / "memberbot.db")
    url = f"sqlite+aiosqlite:///{tmp_path / 'memberbot.db'}"
    monkeypatch.setenv("MEMBERBOT_DATABASE_URL", url)
    monkeypatch.setenv("MEMBERBOT_DEFAULT_LOCALE", "en")

    async def seed() -> None:
        core = await build_core(make_settings(url, None))
        try:
            for name in ("alice", "bob", "carol"):
                await ConsoleChat(core, name, "en").say("help")
        finally:
            await core.close()

    asyncio.run(seed())
    return url


def test_create_shows_progress_then_list_and_show(database, capsys):
    assert main(["admin", "campaign", "create", "--preview"]) == 0
    assert capsys.readouterr().out == "3 recipients\n"

    code = main(["admin", "campaign", "create", "--name", "hi", "--text", "en=Hello\\nthere"])
    created = capsys.readouterr()

    assert code == 0
    assert created.err.endswith("queuing [" + "#" * 30 + "] 3/3\n")
    assert created.out.startswith("created campaign 1\n1 hi sent ")
    assert "reward_voucher=- recipients=3 sent=0 pending=3" in created.out
    assert created.out.endswith(" redeemed=0\n")

    assert main(["admin", "campaign", "list"]) == 0
    assert capsys.readouterr().out.startswith("1 hi sent ")
    assert main(["admin", "campaign", "show", "1"]) == 0
    assert capsys.readouterr().out.endswith("\n  en: Hello there\n")


def test_a_later_campaign_waits_and_refusals_name_the_option(database, capsys):
    assert main(["admin", "campaign", "create", "--text", "en=Hi", "--at", "2099-01-01 09:00"]) == 0
    assert " scheduled send_at=2099-01-01T01:00:00+00:00 " in capsys.readouterr().out

    assert main(["admin", "campaign", "create", "--text", "en=Hi", "--tier", "platinum"]) == 2
    assert capsys.readouterr().err.startswith("memberbot: --tier must be one or more of bronze")
    assert main(["admin", "campaign", "create", "--text", "en=Hi", "--reward-voucher", "mug"]) == 2
    assert capsys.readouterr().err == (
        "memberbot: --reward-voucher must be an active voucher reward: mug\n"
    )
    assert main(["admin", "campaign", "show", "7"]) == 1
    assert "unknown campaign" in capsys.readouterr().err


def test_a_voucher_for_each_recipient(database, capsys):
    assert main(["admin", "reward", "add", "mug", "--name", "en=Mug", "--cost", "80"]) == 0
    assert (
        main(["admin", "reward", "add", "cup", "--name", "en=Cup", "--cost", "9", "--stock", "2"])
        == 0
    )
    capsys.readouterr()
    assert main(["admin", "campaign", "create", "--preview", "--reward-voucher", "cup"]) == 0
    assert capsys.readouterr().out == "3 recipients; vouchers of cup: 2 left\n"

    code = main(["admin", "campaign", "create", "--text", "en=Hi", "--reward-voucher", "mug"])

    assert code == 0
    out = capsys.readouterr().out
    assert " reward_voucher=mug recipients=3 " in out and out.endswith(" redeemed=0\n")
    assert main(["admin", "reward", "show", "mug"]) == 0
    assert " redeemed=3 " in capsys.readouterr().out  # three vouchers, from its stock
