"""The garbage collector of a long-running process (`serve`, `worker`).

What start-up builds (modules, the app, catalogs, statements, rules) lives as long as the
process. `gc.freeze()` moves it out of the collector's sight, so a full collection no longer
walks hundreds of thousands of objects that can never be garbage: under a check-in crowd such
collections paused the loop for up to 135 ms, which was most of the p99 (README, issue 17).
A higher first-generation threshold makes young collections rarer; a request makes a few
hundred short-lived containers, freed by reference counting long before a collection runs.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # Python's default is 700


def settle() -> None:
    """Collect once, then keep what is left out of every later collection."""
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
