"""`memberbot admin import members` and `export members|ledger --csv`, in this process."""

from __future__ import annotations

import csv
import io
import shutil

import pytest

from bot.cli import main

GOOD = (
    "channel,external_id,points,name,birthday,locale\n"
    "telegram,1001,150,Ann,05-20,zh_CN\n"
    "wechat,o-abc,0,,,\n"
    "sms,x,10,,,\n"
    "console,carol,-5,,,\n"
    "console,dave,10,,02-30,\n"
    "console,erin,10,,,fr\n"
    "telegram,1001,999,,,\n"
)


@pytest.fixture
def database(tmp_path, sqlite_template, monkeypatch):
    shutil.copy(sqlite_template, tmp_path / "memberbot.db")
    monkeypatch.setenv("MEMBERBOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'memberbot.db'}")
    monkeypatch.setenv("MEMBERBOT_DEFAULT_LOCALE", "en")
    return tmp_path


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_import_reports_refused_rows_and_is_idempotent(database, capsys):
    path = database / "members.csv"
    path.write_text(GOOD, encoding="utf-8")

    assert main(["admin", "import", "members", str(path)]) == 0
    first = capsys.readouterr()
    assert main(["admin", "import", "members", str(path)]) == 0
    second = capsys.readouterr()

    refusals = [
        "line 4: channel must be one of wechat, telegram, console",
        "line 5: points must be a whole number from 0 to 1000000",
        "line 6: birthday must be MM-DD, a real day",
        "line 7: locale must be one of zh_CN, zh_TW, en",
    ]
    assert first.out.splitlines() == ["imported 2, already imported 1, refused 4", *refusals]
    assert first.err.endswith("importing [" + "#" * 30 + "] 7/7\n")
    assert second.out.splitlines() == ["imported 0, already imported 3, refused 4", *refusals]

    assert main(["admin", "export", "members", "--csv"]) == 0
    members = _rows(capsys.readouterr().out)
    assert [
        (m["channel"], m["external_id"], m["name"], m["birthday"], m["locale"], m["points"])
        for m in members
    ] == [
        ("telegram", "1001", "Ann", "05-20", "zh_CN", "150"),
        ("wechat", "o-abc", "", "", "", "0"),
    ]

    assert main(["admin", "export", "ledger", "--csv"]) == 0
    [entry] = _rows(capsys.readouterr().out)
    assert (entry["kind"], entry["amount"], entry["reason"]) == ("earn", "150", "opening balance")
    assert entry["member_id"] == members[0]["member_id"]


def test_a_file_without_the_required_columns_is_refused(database, capsys):
    path = database / "bad.csv"
    path.write_text("id,points\n1,5\n", encoding="utf-8")

    assert main(["admin", "import", "members", str(path)]) == 2
    assert "the header must name channel, external_id; missing channel" in capsys.readouterr().err
    assert main(["admin", "import", "members", str(database / "missing.csv")]) == 1
    assert "cannot read" in capsys.readouterr().err
