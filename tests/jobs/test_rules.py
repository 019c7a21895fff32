"""Quiet hours, backoff and the rules sections that set them."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

import pytest

from bot.jobs.outbox import backoff
from bot.jobs.quiet import quiet_until
from bot.settings import ConfigError, OutboxRules, load_rules
from tests.conftest import SHANGHAI


def at(hour, minute=0, day=10):
    return datetime(2026, 3, day, hour, minute, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("now", "until"),
    [
        (at(21, 59), None),
        (at(22, 0), at(8, 0, day=11)),
        (at(23, 30), at(8, 0, day=11)),
        (at(0, 5), at(8, 0)),
        (at(7, 59), at(8, 0)),
        (at(8, 0), None),
        (at(14, 0), None),
    ],
)
def test_default_quiet_hours_run_from_22_to_8_local(now, until):
    assert quiet_until(now, SHANGHAI, "22:00", "08:00") == until


def test_quiet_hours_within_one_day_and_none_at_all():
    assert quiet_until(at(13, 30), SHANGHAI, "13:00", "14:00") == at(14, 0)
    assert quiet_until(at(14, 0), SHANGHAI, "13:00", "14:00") is None
    assert quiet_until(at(3, 0), SHANGHAI, "00:00", "00:00") is None


def test_quiet_hours_are_local_whatever_zone_the_clock_gives():
    utc_2330_local = datetime.fromisoformat("2026-03-10T15:30:00+00:00")
    assert quiet_until(utc_2330_local, SHANGHAI, "22:00", "08:00") == at(8, 0, day=11)


def test_backoff_doubles_up_to_the_cap_with_half_of_it_random():
    rules = OutboxRules(backoff_seconds=30, backoff_cap_seconds=600)
    rng = random.Random(7)
    for attempts, full in [(1, 30), (2, 60), (3, 120), (5, 480), (6, 600), (30, 600)]:
        waits = [backoff(attempts, rules, rng) for _ in range(50)]
        assert all(full / 2 <= w <= full for w in waits)
        assert len(set(waits)) == 50  # jittered: no two alike


def test_rules_file_sets_the_nudges_and_outbox_sections(tmp_path: Path):
    path = tmp_path / "memberbot.toml"
    path.write_text(
        '[nudges]\nquiet_start = "23:30"\nquiet_end = "7:00"\ndormant_days = 45\n'
        "[outbox]\nmax_attempts = 3\nhold_days = 2.5\n"
    )
    rules = load_rules(path)
    assert (rules.nudges.quiet_start, rules.nudges.quiet_end) == ("23:30", "07:00")
    assert (rules.nudges.dormant_days, rules.nudges.dormant_every_days) == (45, 30)
    assert (rules.outbox.max_attempts, rules.outbox.hold_days) == (3, 2.5)


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[nudges]\nquiet_start = "25:00"', "nudges.quiet_start"),
        ('[nudges]\nquiet_end = "8h"', "nudges.quiet_end"),
        ("[nudges]\ndaily_hour = 24", "nudges.daily_hour"),
        ("[outbox]\nmax_attempts = 0", "outbox.max_attempts"),
        ("[outbox]\nretries = 3", "outbox.retries"),
    ],
)
def test_a_bad_nudges_or_outbox_rule_is_refused_with_its_key(tmp_path: Path, toml, key):
    path = tmp_path / "memberbot.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_rules(path)
