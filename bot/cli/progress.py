"""A one-line progress bar on standard error, for commands that work through many rows."""

from __future__ import annotations

import sys
from typing import TextIO

WIDTH = 30


class Bar:
    """`bar(done, total)` redraws `label [#####.....] done/total`; `close()` ends the line."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        filled = WIDTH if total == 0 else WIDTH * done // total
        bar = "#" * filled + "." * (WIDTH - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{total}")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
