"""Privacy: the notice, /mydata, /forgetme after confirmation; erasure keeps every number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.channels.console import ConsoleChat
from bot.core.messages import Reply
from bot.jobs.pushes import push_to_chat, push_to_member
from handlers import desk
from handlers.privacy import ASK, DONE, FULL_NOTICE, KEPT
from storage import members
from storage.models import Base, Identity, LedgerEntry, Member, OutboxPush, TicketMessage
from storage.outbox import Target
from tests.conftest import PRIVACY_LINE

NAME = "Zoltan-Quux-7731"  # distinctive: the database is searched for it after erasure
BIRTHDAY = "07-19"
COMPLAINT = "My neighbour Vexa-Plum-9902 saw the broken cup"
LATE = "Late answer for Orbo-Kind-5150"


async def _totals(core) -> tuple[int, int, int, int]:
    async with core.services.db.reader() as session:
        count = (await session.execute(select(func.count()).select_from(Member))).scalar_one()
        ledger = (await session.execute(select(func.sum(LedgerEntry.amount)))).scalar_one()
        points = (await session.execute(select(func.sum(Member.points)))).scalar_one()
        growth = (await session.execute(select(func.sum(Member.growth)))).scalar_one()
    return int(count), int(ledger or 0), int(points or 0), int(growth or 0)


async def _database_mentions(core, *needles: str) -> list[str]:
    """Every table and column whose stored value contains one of `needles`."""
    found = []
    async with core.services.db.reader() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                for column, value in row._mapping.items():
                    text = json.dumps(value, ensure_ascii=False, default=str)
                    found += [f"{table.name}.{column}" for n in needles if n in text]
    return found


async def _arranged(core, chat, media: Path | None = None) -> ConsoleChat:
    """A member with a name, a birthday, check-ins, a push sent to them, a complaint with a
    photo kept under `media`, an answer pushed to their account without naming them (as a
    late WeChat answer is), and a peer."""
    zoltan = chat(NAME)
    await zoltan.say("/birthday " + BIRTHDAY)
    await zoltan.say("yes")  # a birthday is saved once confirmed
    await zoltan.say("/checkin")
    await chat("bob").say("/checkin")
    member = await _member(core, zoltan)
    async with core.services.db.transaction() as session:
        await push_to_member(
            session, core.services, member.id, "reminder", "t:1", lambda t: Reply(f"Hi {NAME}")
        )
        late = Target(zoltan.channel, zoltan.name, None)
        await push_to_chat(session, core.services, late, "late-answer", "late:1", Reply(LATE))
    if media is not None:
        core.services.settings = core.services.settings.model_copy(update={"media_dir": media})
        photo = media / "complaints" / "a.jpg"
        photo.parent.mkdir(parents=True)
        photo.write_bytes(b"\xff\xd8\xff photo")
        await desk.file(core.services, member, "product", COMPLAINT, photo=str(photo))
    return zoltan


async def _member(core, who: ConsoleChat) -> Member:
    async with core.services.db.reader() as session:
        found = await members.find_by_identity(session, who.channel, who.name)
    assert found is not None
    return found


@pytest.mark.parametrize("said", ["/privacy", "隐私", "隱私", "privacy"])
async def test_privacy_shows_the_full_notice(chat, said):
    assert (await chat("alice").say(said)).text == FULL_NOTICE + PRIVACY_LINE


async def test_privacy_notice_comes_from_the_rules_file_when_set(core, chat):
    rules = core.services.rules
    core.services.rules = rules.model_copy(
        update={"privacy": rules.privacy.model_copy(update={"notice": {"en": "Our notice."}})}
    )
    assert (await chat("alice").say("/privacy")).text == "Our notice." + PRIVACY_LINE


@pytest.mark.parametrize("said", ["/mydata", "我的数据", "我的資料", "mydata"])
async def test_mydata_says_what_is_kept(chat, said):
    alice = chat("alice")
    await alice.say("/birthday 05-20")
    await alice.say("yes")
    await alice.say("/checkin")

    reply = await alice.say(said)

    assert reply.private is True
    assert reply.text.split("\n") == [
        "What we keep about you:",
        "• Accounts: console alice",
        "• Name shown by your app: alice",
        "• Birthday: 05-20",
        "• Language: not given",
        "• Points 5, growth 1, tier bronze",
        "• Records: 1 points movements, 1 check-ins, 0 orders, 0 communities, "
        "0 members you invited, 0 messages we sent you",
        "• Promotions: on",
        "Send /forgetme to erase your personal data.",
    ]


@pytest.mark.parametrize("said", ["/forgetme", "注销", "註銷", "forgetme"])
async def test_forgetme_asks_first_and_erases_nothing_yet(core, chat, said):
    zoltan = await _arranged(core, chat)

    reply = await zoltan.say(said)

    assert reply.text == ASK
    assert [b.action for b in reply.buttons] == ["FORGETME:yes"]
    assert (await _member(core, zoltan)).birthday == BIRTHDAY


async def test_anything_but_a_confirmation_keeps_the_data(core, chat):
    zoltan = await _arranged(core, chat)
    await zoltan.say("/forgetme")

    assert (await zoltan.say("no thanks")).text == KEPT
    assert (await _member(core, zoltan)).birthday == BIRTHDAY


@pytest.mark.parametrize("confirm", ["确认", "確認", "yes"])
async def test_confirmed_erasure_keeps_totals_and_leaves_no_personal_text(
    core, chat, confirm, tmp_path
):
    zoltan = await _arranged(core, chat, tmp_path)
    member_id = (await _member(core, zoltan)).id
    before = await _totals(core)
    secrets = (NAME, BIRTHDAY, "Vexa-Plum-9902", "Orbo-Kind-5150", str(tmp_path))
    # The search does find each of them: the name in the ticket's messages and audit trail too.
    mentions = await _database_mentions(core, *secrets)
    assert {"ticket_messages.text", "ticket_messages.author", "ticket_messages.photo"} <= set(
        mentions
    )
    assert {"ticket_events.actor", "outbox.payload", "members.display_name"} <= set(mentions)
    assert all([await _database_mentions(core, one) for one in secrets])

    await zoltan.say("/forgetme")
    reply = await zoltan.say(confirm)

    assert reply.text == DONE
    assert await _totals(core) == before
    assert await _database_mentions(core, *secrets) == []
    assert not (tmp_path / "complaints" / "a.jpg").exists()
    async with core.services.db.reader() as session:
        anonymous = await session.get(Member, member_id)
        assert anonymous is not None
        assert (anonymous.points, anonymous.growth, anonymous.display_name) == (5, 1, None)
        accounts = await session.execute(select(Identity).where(Identity.member_id == member_id))
        assert accounts.first() is None
        # The shell delivered the pushes before the erasure; what they said is erased all
        # the same, the answer that named no member too.
        pushes = (await session.execute(select(OutboxPush).order_by(OutboxPush.id))).scalars()
        assert [(p.kind, p.state, p.payload, p.chat_id) for p in pushes] == [
            ("reminder", "sent", {"text": ""}, ""),
            ("late-answer", "sent", {"text": ""}, ""),
        ]
        # The complaint keeps its number, state and dates; what was said and by whom goes.
        [message] = (await session.execute(select(TicketMessage))).scalars()
        assert (message.text, message.photo, message.author) == ("", None, f"#{member_id}")


async def test_the_button_confirms_too(core, chat):
    zoltan = await _arranged(core, chat)
    await zoltan.say("/forgetme")

    assert (await zoltan.say("/forgetme yes")).text == DONE
    assert await _database_mentions(core, NAME) == []


async def test_erasure_clears_what_the_cache_keeps_about_them(core, chat):
    zoltan = await _arranged(core, chat)
    member_id = (await _member(core, zoltan)).id
    cache, keys = core.services.cache, core.services.cache.keys
    await cache.set(keys.options("console", NAME), '["FORGETME:yes"]', 600)
    await cache.set(keys.wechat_invite_qr(member_id), "https://qr.example/x", 600)
    await zoltan.say("/forgetme")

    await zoltan.say("yes")

    assert await cache.get(keys.options("console", NAME)) is None
    assert await cache.get(keys.wechat_invite_qr(member_id)) is None
    assert await cache.get(keys.dialog(member_id)) is None


async def test_writing_again_after_erasure_starts_a_new_member(core, chat):
    zoltan = await _arranged(core, chat)
    old_id = (await _member(core, zoltan)).id
    await zoltan.say("/forgetme")
    await zoltan.say("yes")

    reply = await zoltan.say("/points")

    assert reply is not None
    again = await _member(core, zoltan)
    assert again.id != old_id and again.points == 0


async def test_an_answer_still_waiting_for_their_account_fails_as_erased(core, chat):
    zoltan = await _arranged(core, chat)
    await zoltan.say("/forgetme")
    async with core.services.db.transaction() as session:
        late = Target(zoltan.channel, zoltan.name, None)
        await push_to_chat(session, core.services, late, "late-answer", "late:2", Reply(LATE))

    await zoltan.say("yes")

    async with core.services.db.reader() as session:
        push = (
            await session.execute(select(OutboxPush).where(OutboxPush.dedupe_key == "late:2"))
        ).scalar_one()
    assert (push.state, push.last_error, push.payload, push.chat_id) == (
        "failed",
        "erased",
        {"text": ""},
        "",
    )
