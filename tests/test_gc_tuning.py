"""serve and worker settle the garbage collector once their core is built."""

from __future__ import annotations

import subprocess
import sys

from bot.cli import gc_tuning

PROBE = (
    "import gc; from bot.cli import gc_tuning; before = gc.get_freeze_count(); "
    "gc_tuning.settle(); print(before, gc.get_freeze_count() > 0, gc.get_threshold()[0])"
)


def test_settle_freezes_what_start_up_built_and_collects_the_young_less_often() -> None:
    # In a child: freezing would keep this test process's garbage for good.
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert out == ["0", "True", str(gc_tuning.YOUNG_THRESHOLD)]
