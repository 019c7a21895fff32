"""The real `memberbot admin reward|voucher` in a subprocess, on its own SQLite file."""

from __future__ import annotations

from pathlib import Path

from tests.test_cli_admin import run


def test_reward_add_set_list_and_refusals(tmp_path: Path):
    added = run(
        tmp_path,
        ["admin", "reward", "add", "mug", "--name", "en=Mug", "--cost", "100", "--stock", "3"],
    )
    changed = run(tmp_path, ["admin", "reward", "set", "mug", "--stock", "", "--min-tier", "gold"])
    listed = run(tmp_path, ["admin", "reward", "list"])
    bad = run(tmp_path, ["admin", "reward", "add", "pen", "--name", "en=Pen", "--cost", "0"])
    unknown = run(tmp_path, ["admin", "voucher", "use", "NOPE42"])

    assert (added.returncode, added.stdout.decode()) == (
        0,
        "created reward mug\nmug voucher active cost=100 stock=3 redeemed=0 per_member_limit=- "
        "min_tier=bronze valid_days=30 names: en=Mug\n",
    )
    assert changed.returncode == 0
    assert listed.stdout.decode() == (
        "mug voucher active cost=100 stock=unlimited redeemed=0 per_member_limit=- "
        "min_tier=gold valid_days=30 names: en=Mug\n"
    )
    assert (bad.returncode, bad.stderr.decode().strip()) == (
        2,
        "memberbot: --cost must be a whole number from 1 to 1000000000",
    )
    assert (unknown.returncode, unknown.stderr.decode().strip()) == (
        1,
        "memberbot: unknown voucher",
    )
