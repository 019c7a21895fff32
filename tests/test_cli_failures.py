"""The real `memberbot` in a subprocess, when it cannot go on: one line naming the setting or
the cause, a non-zero exit, never a traceback nor a password. Also its help and version."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("memberbot")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "bot.cli"]
Done = subprocess.CompletedProcess[bytes]

UNREACHABLE_PG = "postgresql+asyncpg://postgres:s3cret@127.0.0.1:1/memberbot"
SHOWN_PG = "postgresql+asyncpg://postgres:***@127.0.0.1:1/memberbot"
NO_SUCH_PG_DB = "postgresql+asyncpg://postgres@127.0.0.1:5432/memberbot_no_such_database"
WECHAT_DOWN = {
    "MEMBERBOT_WECHAT_TOKEN": "token",
    "MEMBERBOT_WECHAT_APPID": "wx-app",
    "MEMBERBOT_WECHAT_SECRET": "wx-secret",
    "MEMBERBOT_WECHAT_API_BASE": "http://127.0.0.1:1",
}


def run(tmp: Path, args: list[str], **env: str) -> Done:
    clean = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp),
        "MEMBERBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'memberbot.db'}",
        "MEMBERBOT_DEFAULT_LOCALE": "en",
        **env,
    }
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, cwd=tmp, env=clean, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def busy_port() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def cases(tmp: Path, port: int) -> dict[str, tuple[list[str], dict[str, str]]]:
    missing = f"sqlite+aiosqlite:///{tmp / 'missing' / 'memberbot.db'}"
    return {
        "scheme": (["admin", "community", "list"], {"MEMBERBOT_DATABASE_URL": "mysql://u:pw@h/db"}),
        "sync-driver": (["db", "upgrade"], {"MEMBERBOT_DATABASE_URL": "sqlite:///x.db"}),
        "sqlite-folder": (["db", "upgrade"], {"MEMBERBOT_DATABASE_URL": missing}),
        "sqlite-folder-shell": (["shell"], {"MEMBERBOT_DATABASE_URL": missing}),
        "pg-upgrade": (["db", "upgrade"], {"MEMBERBOT_DATABASE_URL": UNREACHABLE_PG}),
        "pg-admin": (["admin", "role", "list"], {"MEMBERBOT_DATABASE_URL": UNREACHABLE_PG}),
        "pg-shell": (["shell", "--as", "alice"], {"MEMBERBOT_DATABASE_URL": UNREACHABLE_PG}),
        "pg-no-db": (["admin", "community", "list"], {"MEMBERBOT_DATABASE_URL": NO_SUCH_PG_DB}),
        "redis": (
            ["admin", "community", "list"],
            {"MEMBERBOT_REDIS_URL": "redis://:pw@127.0.0.1:1/0"},
        ),
        "port": (["serve", "--port", str(port)], WECHAT_DOWN),
        "menu": (["wechat", "menu"], WECHAT_DOWN),
        "menu-unset": (["wechat", "menu"], {}),
        "help": (["--help"], {}),
        "version": (["--version"], {}),
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, busy_port: int) -> dict[str, Done]:
    tmp = tmp_path_factory.mktemp("cli-failures")
    todo = cases(tmp, busy_port)
    dirs = {name: tmp_path_factory.mktemp(name) for name in todo}
    with ThreadPoolExecutor(len(todo)) as pool:
        futures = {
            name: pool.submit(run, dirs[name], args, **env) for name, (args, env) in todo.items()
        }
    return {name: future.result() for name, future in futures.items()}


def failure(done: Done) -> tuple[int, str]:
    """The exit code and the one `memberbot:` line; nothing else but log lines may be there."""
    err = done.stderr.decode()
    assert "Traceback" not in err and "Unclosed" not in err, err
    assert "s3cret" not in err and ":pw@" not in err, err
    said = [line for line in err.splitlines() if line.startswith("memberbot:")]
    assert len(said) == 1, err
    return done.returncode, said[0]


USABLE = "use sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DB"


def test_unknown_database_scheme_names_the_setting(runs):
    assert failure(runs["scheme"]) == (
        2,
        "memberbot: MEMBERBOT_DATABASE_URL=mysql://u:***@h/db is not a database URL "
        f"memberbot can use; {USABLE}",
    )


def test_a_sync_driver_is_not_usable(runs):
    assert failure(runs["sync-driver"]) == (
        2,
        f"memberbot: MEMBERBOT_DATABASE_URL=sqlite:///x.db is not a database URL memberbot "
        f"can use; {USABLE}",
    )


@pytest.mark.parametrize("case", ["sqlite-folder", "sqlite-folder-shell"])
def test_sqlite_file_in_a_missing_folder_names_the_folder(runs, case):
    code, line = failure(runs[case])

    assert code == 1
    assert line.startswith("memberbot: cannot open the database at MEMBERBOT_DATABASE_URL=sqlite")
    assert line.endswith("/missing does not exist")


@pytest.mark.parametrize("case", ["pg-upgrade", "pg-admin", "pg-shell"])
def test_unreachable_postgresql_is_one_line_without_the_password(runs, case):
    assert failure(runs[case]) == (
        1,
        f"memberbot: cannot reach the database at MEMBERBOT_DATABASE_URL={SHOWN_PG}: "
        "connection refused",
    )


def test_missing_postgresql_database_says_so(runs):
    assert failure(runs["pg-no-db"]) == (
        1,
        f"memberbot: cannot reach the database at MEMBERBOT_DATABASE_URL={NO_SUCH_PG_DB}: "
        'database "memberbot_no_such_database" does not exist',
    )


def test_unreachable_redis_names_its_setting(runs):
    assert failure(runs["redis"]) == (
        1,
        "memberbot: cannot reach Redis at MEMBERBOT_REDIS_URL=redis://:***@127.0.0.1:1/0: "
        "connection refused",
    )


def test_serve_on_a_port_in_use_is_one_line_and_closes_what_it_opened(runs, busy_port):
    assert failure(runs["port"]) == (
        1,
        f"memberbot: cannot listen on 127.0.0.1:{busy_port} (--host/--port): "
        "address already in use",
    )


def test_wechat_menu_with_the_api_unreachable_names_the_api_base(runs):
    assert failure(runs["menu"]) == (
        1,
        "memberbot: cannot reach the WeChat API at MEMBERBOT_WECHAT_API_BASE="
        "http://127.0.0.1:1: connection refused",
    )


def test_wechat_menu_without_app_credentials_exits_2(runs):
    assert failure(runs["menu-unset"]) == (
        2,
        "memberbot: set MEMBERBOT_WECHAT_APPID and MEMBERBOT_WECHAT_SECRET first",
    )


def test_help_describes_each_command_and_its_database(runs):
    out = runs["help"].stdout.decode()

    assert runs["help"].returncode == 0
    for command, text in [
        ("serve", "run the HTTP server (MEMBERBOT_DATABASE_URL)"),
        ("shell", "chat with the bot in the terminal (MEMBERBOT_DATABASE_URL)"),
        ("db", "database tasks (MEMBERBOT_DATABASE_URL)"),
        ("wechat", "WeChat Official Account tasks"),
        ("admin", "operator tasks (MEMBERBOT_DATABASE_URL)"),
    ]:
        assert f"    {command:<10}{text}\n" in out
    assert "default sqlite+aiosqlite:///./memberbot.db" in out


def test_version(runs):
    assert (runs["version"].returncode, runs["version"].stdout) == (0, b"memberbot 0.1.0\n")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["admin", "community", "add"], ["--name LOCALE=NAME", "(required)"]),
        (["admin", "community", "set"], ["bronze, silver, gold, diamond", "'' to clear"]),
        (["admin", "member", "points"], ["--reason REASON", "Telegram numeric user id"]),
        (["admin", "role", "grant"], ["{admin,staff,moderator}", "WeChat openid"]),
        (["admin", "invites", "approve"], ["#ID in `invites list`"]),
        (["admin"], ["CHANNEL is wechat, telegram or console", "1 refused, 2 bad usage"]),
    ],
)
def test_subcommand_help_marks_required_options_and_explains_ids(capsys, argv, says):
    from bot.cli import main

    with pytest.raises(SystemExit) as stopped:
        main([*argv, "--help"])

    shown = " ".join(capsys.readouterr().out.split())
    assert stopped.value.code == 0
    for text in says:
        assert text in shown
