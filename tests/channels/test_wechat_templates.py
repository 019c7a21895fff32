"""Service notices as WeChat template messages, against the local fake over real HTTP.

A follower who has not written for three days is outside WeChat's 48-hour window: a
customer-service message cannot reach them, a template message can.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.channels.wechat_sender import template_data
from bot.core.clock import FixedClock
from bot.core.messages import Reply
from bot.jobs.pushes import push_to_member
from bot.settings import ConfigError, load_rules
from storage.models import OutboxPush
from tests.channels.conftest import Probe, WeChatServer
from tests.conftest import outbox_idle
from tests.fakes.wechat import FakeWeChat

OPENID = "oTemplate0000000000000000001"
EXPIRING = "100 points expire on 2026-03-31.\nUse them before then."
TEMPLATE = "TM00015-points-expiring_Xy"


def use_templates(wechat: WeChatServer, templates: dict[str, str]) -> None:
    services = wechat.core.services
    rules = services.rules
    changed = rules.wechat.model_copy(update={"templates": templates})
    services.rules = rules.model_copy(update={"wechat": changed})


async def away_follower(wechat: WeChatServer, probe: Probe, clock: FixedClock) -> int:
    """A follower who wrote once, three days ago: their window has closed."""
    assert (await wechat.text(OPENID, "积分")).status == 200
    clock.advance(days=3)  # 10:00 local: no quiet hours in the way
    member = await probe.member(OPENID)
    assert member is not None
    return member.id


async def push(wechat: WeChatServer, member_id: int, kind: str = "reminder") -> OutboxPush:
    services = wechat.core.services
    async with services.db.transaction() as session:
        queued = await push_to_member(
            session, services, member_id, kind, f"test:{kind}", lambda t: Reply(EXPIRING)
        )
    assert queued is not None
    services.pushes.wake()
    await outbox_idle(wechat.core)
    async with services.db.reader() as session:
        row = await session.get(OutboxPush, queued)
    assert row is not None
    return row


async def test_a_reminder_outside_the_window_goes_out_as_a_template_at_once(
    wechat: WeChatServer, fake_wechat: FakeWeChat, probe: Probe, clock: FixedClock
) -> None:
    member_id = await away_follower(wechat, probe, clock)
    fake_wechat.add_template(TEMPLATE)
    use_templates(wechat, {"reminder": TEMPLATE})

    row = await push(wechat, member_id)

    assert (row.state, row.attempts, row.last_error) == ("sent", 1, None)
    first = "100 points expire on 2026-03-31."
    assert fake_wechat.notices_to(OPENID) == [
        (TEMPLATE, {"first": first, "keyword1": EXPIRING, "remark": ""})
    ]
    assert fake_wechat.sent == []  # no customer-service message
    assert (await probe.identity(OPENID)).send_error is None


@pytest.mark.parametrize("templates", [{}, {"tier-change": TEMPLATE}], ids=["none", "other"])
async def test_without_a_template_for_its_kind_the_reminder_is_held(
    wechat: WeChatServer,
    fake_wechat: FakeWeChat,
    probe: Probe,
    clock: FixedClock,
    templates: dict[str, str],
) -> None:
    member_id = await away_follower(wechat, probe, clock)
    fake_wechat.add_template(TEMPLATE)
    use_templates(wechat, templates)

    row = await push(wechat, member_id)

    assert (row.state, row.last_error) == ("held", "outside-window")
    assert fake_wechat.send_attempts == [] and fake_wechat.templates_sent == []

    await wechat.text(OPENID, "积分")  # they write again: it goes out as before
    await outbox_idle(wechat.core)
    assert fake_wechat.texts_to(OPENID) == [EXPIRING]


async def test_a_template_id_wechat_does_not_know_fails_with_its_reason(
    wechat: WeChatServer, fake_wechat: FakeWeChat, probe: Probe, clock: FixedClock
) -> None:
    member_id = await away_follower(wechat, probe, clock)
    use_templates(wechat, {"reminder": "TM-not-in-the-console"})

    row = await push(wechat, member_id)
    clock.advance(days=1)
    await outbox_idle(wechat.core)

    assert (row.state, row.attempts, row.last_error) == ("failed", 1, "invalid-template")
    assert len(fake_wechat.send_attempts) == 1  # not retried
    # The operator's mistake, not the follower's: their account stays reachable.
    identity = await probe.identity(OPENID)
    assert (identity.unreachable, identity.send_error) == (False, None)


async def test_an_unfollowed_account_fails_the_notice_and_is_marked(
    wechat: WeChatServer, fake_wechat: FakeWeChat, probe: Probe, clock: FixedClock
) -> None:
    member_id = await away_follower(wechat, probe, clock)
    fake_wechat.add_template(TEMPLATE)
    use_templates(wechat, {"reminder": TEMPLATE})
    fake_wechat.refuse(OPENID, 43004)

    row = await push(wechat, member_id)

    assert (row.state, row.last_error) == ("failed", "43004")
    assert len(fake_wechat.send_attempts) == 1
    identity = await probe.identity(OPENID)
    assert (identity.unreachable, identity.send_error) == (True, "wechat:43004")


async def test_other_errors_are_retried_by_the_outbox(
    wechat: WeChatServer, fake_wechat: FakeWeChat, probe: Probe, clock: FixedClock
) -> None:
    member_id = await away_follower(wechat, probe, clock)
    fake_wechat.add_template(TEMPLATE)
    use_templates(wechat, {"reminder": TEMPLATE})
    attempts = wechat.channel.api.attempts
    fake_wechat.fail_next(attempts, -1)  # every try of the first attempt: WeChat's busy

    row = await push(wechat, member_id)
    assert (row.state, row.attempts, row.last_error) == ("pending", 1, "error")
    assert fake_wechat.templates_sent == []

    assert row.next_attempt_at is not None
    clock.set(row.next_attempt_at)
    await outbox_idle(wechat.core)

    assert [t for t, _ in fake_wechat.notices_to(OPENID)] == [TEMPLATE]
    assert len(fake_wechat.send_attempts) == attempts + 1


def test_template_data_puts_the_first_line_and_the_whole_text_in_the_fields() -> None:
    one = {"first": "Only line", "keyword1": "Only line", "remark": ""}
    assert template_data("Only line") == one


def test_the_rules_file_names_templates_by_push_kind(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        '[wechat.templates]\nreminder = "TM-1"\ntier-change = "TM_2"\nstaff-reply = "Ab3"\n',
        encoding="utf-8",
    )
    templates = load_rules(path).wechat.templates
    assert templates == {"reminder": "TM-1", "tier-change": "TM_2", "staff-reply": "Ab3"}

    path.write_text('[wechat.templates]\nreminder = "has space"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"wechat\.templates: .*reminder: template id"):
        load_rules(path)
