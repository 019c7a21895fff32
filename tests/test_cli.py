"""The real `memberbot` command in a subprocess: shell, db upgrade, bad rules (SQLite only)."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("memberbot")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "bot.cli"]
UNKNOWN_REPLY = "Sorry, I didn't understand that."
CHECKED_IN = "Checked in! +5 points, 1-day streak. Balance: 5."


def run(
    tmp_path: Path, *args: str, stdin: bytes = b"", **env: str
) -> subprocess.CompletedProcess[bytes]:
    """`memberbot ARGS` in an empty directory with a clean environment and its own SQLite file."""
    clean = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "MEMBERBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'memberbot.db'}",
        "MEMBERBOT_DEFAULT_LOCALE": "en",
        **env,
    }
    return subprocess.run(
        [*COMMAND, *args],
        input=stdin,
        capture_output=True,
        cwd=tmp_path,
        env=clean,
        timeout=60,
        check=False,
    )


def no_traceback(done: subprocess.CompletedProcess[bytes]) -> bool:
    return b"Traceback" not in done.stdout and b"Traceback" not in done.stderr


NASTY_LINES = [
    "",
    "   ",
    "x" * 100_000,
    "😀🎉👍🏽",
    "\x00签到\x00",
    "\x1b[31mpoints\x1b[0m",
    "\x07",
    "\u202eknurd",
    "\t",
    "²",  # a digit to str.isdigit(), not to int(), right after a reply with numbered options
    "١",
]
BAD_RULES = {
    "rules-wrong-type": '[checkin]\nstreak_rewards = "x"\n',
    "rules-unknown-key": "[checkin]\nstreak_reward = [5, 10]\n",
}


def _case(name: str, tmp: Path) -> subprocess.CompletedProcess[bytes]:
    if name == "shell-checkin":
        return run(tmp, "shell", "--as", "alice", stdin="help\n签到\n\n".encode())
    if name == "shell-nasty":
        stdin = "\n".join(NASTY_LINES).encode() + b"\n\xff\xfe not utf-8\n"
        # PYTHONIOENCODING=utf-8 decodes strictly, as a UTF-8 locale such as en_US.UTF-8 does.
        return run(tmp, "shell", "--as", "mallory", stdin=stdin, PYTHONIOENCODING="utf-8")
    if name == "db-upgrade":
        return run(tmp, "db", "upgrade")
    rules = tmp / "rules.toml"
    rules.write_text(BAD_RULES[name], encoding="utf-8")
    return run(tmp, "shell", "--as", "alice", stdin=b"help\n", MEMBERBOT_RULES_FILE=str(rules))


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[Path, subprocess.CompletedProcess[bytes]]]:
    """Every command of this module, started at once (each pays the interpreter's start-up)."""
    names = ["shell-checkin", "shell-nasty", "db-upgrade", *BAD_RULES]
    dirs = {name: tmp_path_factory.mktemp(name) for name in names}
    with ThreadPoolExecutor(len(names)) as pool:
        futures = {name: pool.submit(_case, name, dirs[name]) for name in names}
    return {name: (dirs[name], future.result()) for name, future in futures.items()}


def test_shell_answers_help_and_checkin_then_exits_zero(runs):
    _, done = runs["shell-checkin"]

    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert "Hi! Here is what I can do:" in out
    assert CHECKED_IN in out
    assert out.index("Hi! Here is what I can do:") < out.index(CHECKED_IN)
    assert no_traceback(done)


def test_shell_survives_blank_huge_emoji_control_and_undecodable_lines(runs):
    _, done = runs["shell-nasty"]

    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert no_traceback(done)
    assert CHECKED_IN in out  # control characters are dropped, the keyword still works
    assert out.count(UNKNOWN_REPLY) == 8  # every other non-blank line is answered, once
    assert not {"\x00", "\x1b", "\x07"} & set(out)


def test_db_upgrade_creates_the_tables(runs):
    tmp, done = runs["db-upgrade"]

    assert done.returncode == 0, done.stderr.decode()
    assert b"database is up to date" in done.stdout
    with sqlite3.connect(tmp / "memberbot.db") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    expected = {"members", "identities", "ledger_entries", "checkins", "orders", "link_codes"}
    assert expected | {"alembic_version"} <= tables


@pytest.mark.parametrize(
    ("case", "key"),
    [
        ("rules-wrong-type", "checkin.streak_rewards"),
        ("rules-unknown-key", "checkin.streak_reward"),
    ],
)
def test_bad_rules_file_exits_2_naming_the_key(runs, case, key):
    _, done = runs[case]

    assert done.returncode == 2
    assert key in done.stderr.decode()
    assert done.stdout == b""
    assert no_traceback(done)


def test_logging_keeps_the_bot_token_in_telegram_urls_out_of_the_log(caplog):
    from bot.cli import configure_logging

    configure_logging()
    caplog.set_level(logging.INFO)
    logging.getLogger("httpx").info("HTTP Request: POST https://api.telegram.org/bot1:SECRET/x")

    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("httpcore").getEffectiveLevel() == logging.WARNING
    assert "SECRET" not in caplog.text
