"""The real `memberbot admin` in a subprocess: communities, roles, held invite rewards (SQLite).

Every command of this module starts at once (each pays the interpreter's start-up); the
commands of one scenario run one after another on that scenario's own database.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.admin import communities
from bot.app import build_core
from bot.channels.console import ConsoleChat
from bot.cli import main
from bot.core.clock import FixedClock
from tests.conftest import START, make_settings

SCRIPT = Path(sys.executable).with_name("memberbot")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "bot.cli"]
Done = subprocess.CompletedProcess[bytes]

COFFEE_ADD = [
    *("admin", "community", "add", "coffee", "--name", "en=Coffee", "--name", "zh_CN=咖啡"),
    *("--tag", "drinks", "--min-tier", "silver", "--telegram-chat-id", "-100123"),
    *("--wechat-qr", "https://example.com/qr.png", "--description", "Beans\nand brews"),
]
SCENARIOS: dict[str, list[list[str]]] = {
    "community": [
        COFFEE_ADD,
        [
            *("admin", "community", "set", "coffee", "--min-tier", "gold"),
            *("--name", "zh_TW=咖啡", "--wechat-qr", "", "--tag", "beans"),
        ],
        ["admin", "community", "archive", "coffee"],
        ["admin", "community", "list"],
    ],
    "bad-slug": [["admin", "community", "add", "Bad!", "--name", "en=Bad"]],
    "set-unknown": [["admin", "community", "set", "nope", "--tag", "x"]],
    "invites": [
        ["admin", "invites", "list"],
        ["admin", "invites", "approve", "1"],
        ["admin", "invites", "reject", "1"],
    ],
    "roles": [
        ["admin", "role", "grant", "moderator", "console", "alice", "--community", "coffee"],
        ["admin", "role", "list"],
        ["admin", "role", "revoke", "moderator", "console", "alice", "--community", "coffee"],
    ],
    "rerun": [COFFEE_ADD, COFFEE_ADD, [*COFFEE_ADD, "--if-missing"]],
    "cli-words": [
        ["admin", "community", "add", "tea", "--name", "en=Tea", "--min-tier", "platinum"],
        ["admin", "community", "add", "tea", "--name", "en="],
        ["admin", "community", "add", "tea", "--name", "en=Tea", "--wechat-qr", "ftp://x"],
        ["admin", "community", "add", "tea", "--name", "en=Tea", "--telegram-chat-id", "5"],
    ],
    "members": [
        [
            "admin",
            "member",
            "points",
            "console",
            "alice",
            "100",
            "--reason",
            "goodwill",
            "--key",
            "t-1",
        ],
        [
            "admin",
            "member",
            "points",
            "console",
            "alice",
            "100",
            "--reason",
            "goodwill",
            "--key",
            "t-1",
        ],
        [
            "admin",
            "member",
            "points",
            "console",
            "alice",
            "200",
            "--reason",
            "goodwill",
            "--key",
            "t-1",
        ],
        ["admin", "member", "show", "console", "alice"],
        ["admin", "member", "ledger", "console", "alice"],
        ["admin", "member", "ledger", "console", "alice", "--limit", "0"],
        ["admin", "member", "show", "console", "nobody"],
    ],
}
SEEDED = ("invites", "roles", "members")


def database(tmp: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp / 'memberbot.db'}"


def run(tmp: Path, args: list[str]) -> Done:
    """`memberbot ARGS` in its directory with a clean environment and its own SQLite file."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp),
        "MEMBERBOT_DATABASE_URL": database(tmp),
        "MEMBERBOT_DEFAULT_LOCALE": "en",
    }
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, cwd=tmp, env=env, timeout=60, check=False
    )


async def seed(tmp: Path) -> None:
    """Alice invited Bob, whose first check-in came past her daily cap (0 here): held for
    review; a coffee community exists."""
    core = await build_core(make_settings(database(tmp), None), clock=FixedClock(START))
    try:
        rules = core.services.rules
        capped = rules.invites.model_copy(update={"daily_review_threshold": 0})
        core.services.rules = rules.model_copy(update={"invites": capped})
        alice, bob = ConsoleChat(core, "alice", "en"), ConsoleChat(core, "bob", "en")
        await alice.say("help")
        reply = await alice.say("invite")
        assert reply is not None
        code = re.search(r"Your invite code: (\w+)", reply.text)
        assert code is not None
        await bob.say(f"invite {code.group(1)}")
        await bob.say("checkin")
        await communities.save_community(core.services, "coffee", {"names": {"en": "Coffee"}})
    finally:
        await core.close()


def scenario(tmp: Path, commands: list[list[str]]) -> list[Done]:
    return [run(tmp, args) for args in commands]


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> dict[str, tuple[Path, list[Done]]]:
    dirs = {name: tmp_path_factory.mktemp(name) for name in SCENARIOS}
    for tmp in dirs.values():
        shutil.copy(sqlite_template, tmp / "memberbot.db")
    for name in SEEDED:
        asyncio.run(seed(dirs[name]))
    with ThreadPoolExecutor(len(SCENARIOS)) as pool:
        futures = {name: pool.submit(scenario, dirs[name], SCENARIOS[name]) for name in SCENARIOS}
    return {name: (dirs[name], future.result()) for name, future in futures.items()}


def out(done: Done) -> tuple[int, str, str]:
    assert b"Traceback" not in done.stderr, done.stderr.decode()
    return done.returncode, done.stdout.decode(), done.stderr.decode()


COFFEE = (
    "coffee {state} min_tier={tier} members=0 tag={tag} telegram_chat_id=-100123 "
    "wechat_qr={qr} names: {names}\n  description: Beans and brews\n"
)
BOTH = "en=Coffee, zh_CN=咖啡"
ALL = "en=Coffee, zh_CN=咖啡, zh_TW=咖啡"
QR = "https://example.com/qr.png"


def test_community_add_creates_it_with_every_option(runs):
    assert out(runs["community"][1][0]) == (
        0,
        "created community coffee\n"
        + COFFEE.format(state="active", tier="silver", tag="drinks", qr=QR, names=BOTH),
        "",
    )


def test_community_set_changes_only_the_options_given_and_adds_names(runs):
    _, (_, changed, _, _) = runs["community"]

    assert out(changed) == (
        0,
        "updated community coffee\n"
        + COFFEE.format(state="active", tier="gold", tag="beans", qr="-", names=ALL),
        "",
    )


def test_community_archive_then_list_shows_it_archived(runs):
    _, (*_, archive, listing) = runs["community"]
    archived = COFFEE.format(state="archived", tier="gold", tag="beans", qr="-", names=ALL)

    assert out(archive) == (0, "archived community coffee\n" + archived, "")
    assert out(listing) == (0, archived, "")


def test_an_invalid_value_exits_2_with_a_one_line_reason(runs):
    _, (done,) = runs["bad-slug"]

    assert out(done) == (
        2,
        "",
        "memberbot: slug must be 2 to 32 characters of a-z, 0-9, - and _\n",
    )


def test_setting_an_unknown_community_is_refused_with_exit_1(runs):
    _, (done,) = runs["set-unknown"]

    assert out(done) == (1, "", "memberbot: unknown community nope\n")


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["community", "add", "tea", "--name", "Tea"], "expected LOCALE=NAME such as en=Coffee"),
        (["community", "add", "tea", "--telegram-chat-id", "x"], "not a whole number: 'x'"),
        (["invites", "approve", "first"], "invalid int value: 'first'"),
        (["role", "grant", "admin"], "the following arguments are required"),
        ([], "the following arguments are required: area"),
        (["community", "add", "tea"], "the following arguments are required: --name"),
        (["community", "add", "tea", "--name", "fr=Thé"], "unknown language 'fr' in 'fr=Thé'"),
        (["role", "grant", "boss", "console", "alice"], "invalid choice: 'boss'"),
        (["member", "show", "sms", "alice"], "invalid choice: 'sms'"),
        (["invites", "list", "--status", "open"], "invalid choice: 'open'"),
    ],
)
def test_a_malformed_command_line_is_a_usage_error_exiting_2(capsys, argv, reason):
    # Refused by the parser before anything runs, so in this process rather than a new one.
    with pytest.raises(SystemExit) as stopped:
        main(["admin", *argv])

    assert stopped.value.code == 2
    assert reason in capsys.readouterr().err


def test_invites_list_shows_the_held_reward(runs):
    _, (listing, *_) = runs["invites"]

    assert out(listing) == (
        0,
        "#1 review inviter=1 (console:alice) invitee=2 (console:bob) via=code "
        "created_at=2026-03-10T02:00:00+00:00 "
        "reward_day=2026-03-10 decided_at=-\n",
        "",
    )


def test_invites_approve_pays_once_and_a_later_rejection_exits_1(runs):
    tmp, (_, first, second) = runs["invites"]

    code, stdout, stderr = out(first)
    assert (code, stderr) == (0, "")
    assert re.fullmatch(
        r"approved invite 1\n#1 rewarded inviter=1 \(console:alice\) "
        r"invitee=2 \(console:bob\) via=code "
        r"created_at=2026-03-10T02:00:00\+00:00 reward_day=2026-03-10 decided_at=\S+\n",
        stdout,
    )
    assert out(second) == (1, "", "memberbot: invite 1 is not in review (it is rewarded)\n")
    with sqlite3.connect(tmp / "memberbot.db") as conn:
        entries = conn.execute(
            "SELECT kind, amount, reason FROM ledger_entries WHERE member_id = 1"
        ).fetchall()
        points, growth = conn.execute("SELECT points, growth FROM members WHERE id = 1").fetchone()
    assert entries == [("earn", 50, "invite-reward")]
    assert (points, growth) == (50, 50)


def test_role_grant_list_revoke(runs):
    _, (grant, listing, revoke) = runs["roles"]
    line = "moderator of coffee: member 1 (console:alice)"

    assert out(grant) == (0, f"granted: {line}\n", "")
    assert out(listing) == (0, f"{line}\n", "")
    assert out(revoke) == (0, f"revoked: {line}\n", "")


def test_adding_a_community_again_says_how_to_change_it(runs):
    _, (first, again, if_missing) = runs["rerun"]

    assert out(first)[0] == 0
    assert out(again) == (
        1,
        "",
        "memberbot: community coffee already exists: change it with `memberbot admin "
        "community set coffee ...`, or add --if-missing to leave it as it is\n",
    )
    assert out(if_missing) == (
        0,
        "community coffee already exists; left unchanged\n"
        + COFFEE.format(state="active", tier="silver", tag="drinks", qr=QR, names=BOTH),
        "",
    )


def test_refusals_name_the_option_not_the_api_field(runs):
    _, (tier, name, qr, chat_id) = runs["cli-words"]

    assert out(tier) == (
        2,
        "",
        "memberbot: --min-tier must be one of bronze, silver, gold, diamond\n",
    )
    assert out(name) == (2, "", "memberbot: --name en=NAME must be text of 1 to 64 characters\n")
    assert out(qr) == (
        2,
        "",
        "memberbot: --wechat-qr must be an http or https URL of at most 512 characters, "
        "or '' (none)\n",
    )
    assert out(chat_id) == (
        2,
        "",
        "memberbot: --telegram-chat-id must be a negative whole number (a Telegram group id) "
        "or '' (none)\n",
    )


def test_member_points_once_per_key_then_show_and_ledger(runs):
    _, (added, repeated, changed, show, ledger, bad_limit, nobody) = runs["members"]

    assert out(added) == (0, "adjusted +100 points; balance 100\n", "")
    assert out(repeated) == (0, "already applied under --key t-1; balance 100\n", "")
    assert out(changed) == (
        1,
        "",
        "memberbot: idempotency_key t-1 was already used for an adjustment of +100 (goodwill)\n",
    )
    code, stdout, _ = out(show)
    assert code == 0
    assert re.fullmatch(
        r"member 1 \(console:alice\) points=100 growth=0 tier=bronze streak=0 "
        r"invite_code=\w{6} locale=en birthday=- created_at=2026-03-10T02:00:00\+00:00\n",
        stdout,
    )
    code, stdout, _ = out(ledger)
    assert (code, stdout.split(" ", 1)[1]) == (0, "adjust +100 goodwill (key adjust:1:t-1)\n")
    assert out(bad_limit) == (2, "", "memberbot: --limit must be a whole number from 1 to 1000\n")
    assert out(nobody) == (1, "", "memberbot: unknown member\n")
