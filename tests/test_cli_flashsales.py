"""The real `memberbot admin flashsale ...` in a subprocess (SQLite): create, list, show,
cancel, and a bad field named as its option."""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_cli_admin import COFFEE_ADD, run


def out(done) -> str:  # type: ignore[no-untyped-def]
    return done.stdout.decode()


def test_create_list_show_cancel(tmp_path: Path) -> None:
    assert run(tmp_path, COFFEE_ADD).returncode == 0
    created = run(
        tmp_path,
        [*("admin", "flashsale", "create", "coffee", "Geisha beans", "--price", "99.50"),
         *("--stock", "20", "--limit", "2", "--minutes", "30")],
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    found = re.match(r"created flash sale (\w{6})\n", out(created))
    assert found is not None
    code = found.group(1)
    line = out(created).splitlines()[1]
    assert line.startswith(f"{code} live community=coffee title='Geisha beans' price=99.50 ")
    assert "claimed=0/20 limit=2 min_tier=-" in line

    listed = run(tmp_path, ["admin", "flashsale", "list", "--state", "live"])
    assert out(listed).splitlines() == [line]
    shown = run(tmp_path, ["admin", "flashsale", "show", code])
    assert out(shown).splitlines() == [line]
    cancelled = run(tmp_path, ["admin", "flashsale", "cancel", code])
    assert out(cancelled).splitlines()[0] == f"cancelled flash sale {code}"
    again = run(tmp_path, ["admin", "flashsale", "cancel", code])
    assert again.returncode == 1
    assert again.stderr.decode().strip().endswith(f"flash sale {code} is cancelled already")


def test_a_bad_field_is_named_as_its_option(tmp_path: Path) -> None:
    assert run(tmp_path, COFFEE_ADD).returncode == 0

    bad = run(
        tmp_path,
        [*("admin", "flashsale", "create", "coffee", "Beans", "--price", "9"),
         *("--stock", "0", "--minutes", "30")],
    )  # fmt: skip

    assert bad.returncode == 2
    assert "--stock must be a whole number from 1 to 1000000" in bad.stderr.decode()
    assert out(run(tmp_path, ["admin", "flashsale", "list"])) == "no flash sales\n"
