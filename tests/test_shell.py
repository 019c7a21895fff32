"""`memberbot shell` (issue 16, items 13-14): piped transcripts turn by turn, numbers that
cannot pick say so, posing as a WeChat/Telegram member to link offline; and the line editor
(prompt_toolkit) for arrows, history, Ctrl-C and Ctrl-D."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prompt_toolkit import PromptSession
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput

from bot.channels.console import ConsoleChat
from bot.cli.shell import run_interactive
from tests.conftest import HELP_TEXT, PRIVACY_LINE

SCRIPT = Path(sys.executable).with_name("memberbot")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "bot.cli"]
OPTIONS = (
    "[1] Check in  [2] Points  [3] Tier  [4] Invite  [5] Communities  [6] Rewards  "
    "[7] Complain  [8] Link accounts"
)
CODE = re.compile(r"Your link code is (\d{6})\.")


@pytest.fixture
def home(tmp_path: Path, sqlite_template: Path) -> Path:
    shutil.copy(sqlite_template, tmp_path / "memberbot.db")
    return tmp_path


def shell(home: Path, *args: str, said: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "MEMBERBOT_DATABASE_URL": f"sqlite+aiosqlite:///{home / 'memberbot.db'}",
        "MEMBERBOT_DEFAULT_LOCALE": "en",
    }
    return subprocess.run(
        [*COMMAND, "shell", *args],
        input=said,
        capture_output=True,
        text=True,
        cwd=home,
        env=env,
        timeout=60,
        check=False,
    )


def test_piped_replies_are_separated_and_numbers_that_cannot_pick_say_so(home: Path):
    done = shell(home, "--as", "alice", said="points\n\n9\n2\n")

    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (
        "> points\n"
        f"Your points: 0\nNo points yet. Check in every day to earn some!{PRIVACY_LINE}\n\n"
        "> 9\n"
        "(nothing to pick: the last reply had no numbered options; sent “9” as text)\n"
        f"Sorry, I didn't understand that.\n\n{HELP_TEXT}\n{OPTIONS}\n\n"
        "> 2\n"
        "Your points: 0\nNo points yet. Check in every day to earn some!\n\n"
    )


def test_posing_as_app_members_links_accounts_offline(home: Path):
    issued = shell(home, "--as", "alice", said="checkin\n/link\n")
    code = CODE.search(issued.stdout)
    assert code is not None, issued.stdout

    linked = shell(
        home, "--app", "telegram", "--as", "424242", said=f"{code.group(1)}\npoints\ninvite\n"
    )
    again = shell(home, "--app", "wechat", "--as", "oWX-1", said="/link\ninvite\n")
    invite_code = re.search(r"Your invite code: (\w+)", linked.stdout)
    qr_code = re.search(r"Your invite code: (\w+)", again.stdout)
    assert invite_code is not None and qr_code is not None

    assert linked.returncode == 0, linked.stderr
    assert linked.stdout.startswith(
        f"> {code.group(1)}\nLinked! Your accounts are now one member: 5 points, tier Bronze.\n\n"
        "> points\nYour points: 5\n"
    )
    assert CODE.search(again.stdout) is not None
    # The app's own answers, made up and marked offline: nothing reaches Telegram or WeChat.
    assert (
        f"Your invite link: https://t.me/offline_memberbot?start=ref_{invite_code.group(1)}\n"
        in linked.stdout
    )
    assert (
        "Your invite QR code (friends scan it to follow us): "
        f"https://example.invalid/offline-qr?scene=ref_{qr_code.group(1)}\n" in again.stdout
    )


def test_app_must_be_one_the_bot_speaks(home: Path):
    done = shell(home, "--app", "sms", said="help\n")

    assert done.returncode == 2
    assert "argument --app: invalid choice: 'sms'" in done.stderr


# -- the line editor ---------------------------------------------------------------------------


class Terminal:
    """What the interactive shell wrote."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


class Typist:
    """A prompt_toolkit session fed one chunk of keystrokes per prompt, as a person types
    after seeing the prompt (all at once, recalled history would not be loaded yet)."""

    def __init__(self, pipe: PipeInput, chunks: list[str]) -> None:
        self.pipe, self.chunks = pipe, list(chunks)
        self.session: PromptSession[str] = PromptSession(
            input=pipe, output=DummyOutput(), history=InMemoryHistory()
        )

    async def prompt_async(self, message: str) -> str:
        chunk = self.chunks.pop(0)
        return await self.session.prompt_async(message, pre_run=lambda: self.pipe.send_text(chunk))


async def _interactive(chat: ConsoleChat, chunks: list[str]) -> tuple[int, str]:
    out = Terminal()
    with create_pipe_input() as pipe:
        code = await run_interactive(chat, out, Typist(pipe, chunks))  # type: ignore[arg-type]
    return code, out.text


async def test_arrows_recall_history_ctrl_c_drops_the_line_ctrl_d_ends(chat):
    alice = chat("alice")
    up, left, ctrl_c, ctrl_d = "\x1b[A", "\x1b[D", "\x03", "\x04"
    keys = [
        "checkin\r",
        f"gibberish{ctrl_c}",  # dropped at once: never answered
        f"{up}\r",  # the previous line again: already checked in
        f"pints{left * 4}o\r",  # "pints" edited into "points"
        ctrl_d,
    ]

    code, shown = await _interactive(alice, keys)

    assert code == 0
    assert shown == (
        "memberbot shell, chatting as alice. Try: help, 签到, points. A number picks an option. "
        "Ctrl-D ends.\n"
        f"Checked in! +5 points, 1-day streak. Balance: 5.\nTomorrow: +5 points.{PRIVACY_LINE}\n"
        "You have already checked in today (1-day streak). Come back tomorrow for 5 points.\n"
        "Your points: 5\nRecent:\n03-10 +5 Check-in\n"
        "\n"  # Ctrl-D leaves the terminal on a fresh line
    )
