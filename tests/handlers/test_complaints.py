"""The complaints desk through the terminal door: a member files, staff work the ticket,
replies reach the member through the outbox, deadlines warn and escalate once, roles hold."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from bot.core.ports import Senders
from bot.jobs.env import JobEnv
from handlers import HOOKS
from handlers.nudges import TEXTS
from handlers.ticket_deadlines import hook
from storage import communities, roles, tickets
from storage.models import LedgerEntry, Ticket
from tests.conftest import SHANGHAI, START
from tests.jobs.conftest import FakeApp

STAFF_CHAT = "-100777"
REFUSAL = "Only support staff can do that."
FILED = (
    "Your complaint is filed as C-000001. We will give you a first reply within 24 hours "
    "(by 2026-03-11 10:00). Add to it with /ticket C-000001 TEXT."
)


class Desk:
    """The member alice, staff sam and tina, the staff chat (a scripted Telegram group)."""

    def __init__(self, core, chat, probe) -> None:
        self.core = core
        self.services = core.services
        self.probe = probe
        self.alice = chat("alice")
        self.sam = chat("sam")
        self.tina = chat("tina")
        self.staff_chat = FakeApp("telegram")
        self.services.senders.add(self.staff_chat)
        self.services.settings = self.services.settings.model_copy(
            update={"telegram_staff_chat_id": STAFF_CHAT}
        )

    async def grant(self, who, role=roles.STAFF, community_id=0) -> None:
        member = await self.probe.member(who)
        async with self.services.db.transaction() as session:
            await roles.grant(session, member.id, role, community_id, START)

    async def deliver(self) -> None:
        senders: Senders = self.services.senders
        await JobEnv(self.services, senders, TEXTS).sender.drain()

    def posted(self) -> list[str]:
        texts = [c.text for c in self.staff_chat.calls if c.chat_id == STAFF_CHAT]
        self.staff_chat.calls.clear()
        return texts

    async def ticket(self, ticket_id: int = 1) -> Ticket:
        async with self.services.db.sessions() as session:
            found = await tickets.get(session, ticket_id)
            assert found is not None
            return found

    async def trail(self, ticket_id: int = 1) -> list[str]:
        async with self.services.db.sessions() as session:
            return [e.action for e in await tickets.events(session, ticket_id)]

    def rules(self, section: str, **values) -> None:
        rules = self.services.rules
        changed = getattr(rules, section).model_copy(update=values)
        self.services.rules = rules.model_copy(update={section: changed})


@pytest.fixture
async def desk(core, chat, probe) -> Desk:
    made = Desk(core, chat, probe)
    for who in (made.alice, made.sam, made.tina):
        await who.say("help")  # first contact: the member and their name
    await made.grant(made.sam)
    await made.grant(made.tina)
    return made


async def test_complain_with_text_files_at_once_with_number_and_promise(desk):
    reply = await desk.alice.say("/complain the kettle leaks")

    assert reply.text == FILED
    ticket = await desk.ticket()
    assert (ticket.state, ticket.category) == ("open", "other")
    assert ticket.first_response_due == START + timedelta(hours=24)
    await desk.deliver()
    [post] = desk.posted()
    assert post.startswith("New ticket C-000001 · Other · due 2026-03-11 10:00\n")
    assert post.endswith("the kettle leaks")


@pytest.mark.parametrize("said", ["投诉 水壶漏水", "complain the kettle leaks"])
async def test_complaint_keywords_file_too(desk, said):
    reply = await desk.alice.say(said)

    assert reply.text == FILED


async def test_guided_complaint_asks_category_then_text(desk):
    asked = await desk.alice.say("/complain")
    assert asked.text == "What is your complaint about?"
    assert [b.label for b in asked.buttons] == [
        "Product",
        "Delivery",
        "After-sales",
        "Service",
        "Other",
    ]

    told = await desk.alice.say("2")  # a typed number picks the option
    assert told.text == "Delivery: please describe what happened in one message."
    filed = await desk.alice.say("the parcel came three days late")

    assert filed.text == FILED
    assert (await desk.ticket()).category == "delivery"
    # The dialog is over: the next text is no complaint.
    assert (await desk.alice.say("blorp")).text.startswith("Sorry, I didn't understand")


async def test_a_tier_with_a_shorter_deadline_promises_it(desk):
    tiers = tuple(
        t.model_copy(update={"first_response_hours": 2.5}) if t.name == "gold" else t
        for t in desk.services.rules.tiers
    )
    desk.services.rules = desk.services.rules.model_copy(update={"tiers": tiers})
    await desk.probe.set_growth(desk.alice, 2000, "gold")

    reply = await desk.alice.say("/complain slow")

    assert "within 2.5 hours (by 2026-03-10 12:30)" in reply.text
    assert (await desk.ticket()).first_response_due == START + timedelta(hours=2.5)


async def test_a_tickets_whole_life(desk, clock):
    alice, sam = desk.alice, desk.sam
    await alice.say("/complain the kettle leaks")

    assert (await sam.say("/take C-000001")).text == "C-000001 is yours."
    assert (await sam.say("/wait 1 Which order number?")).text == (
        "Asked; C-000001 waits for the member (the clock stops)."
    )
    await desk.deliver()
    assert [r.text for r in alice.pushed()] == [
        "Question about your ticket C-000001 (answer with /ticket C-000001 TEXT):\n"
        "Which order number?"
    ]

    clock.advance(hours=5)  # waiting on the member: this time does not count
    assert (await alice.say("/ticket C-000001 order 778")).text == "Added to C-000001."
    ticket = await desk.ticket()
    assert (ticket.state, ticket.assignee_id) == ("assigned", (await desk.probe.member(sam)).id)
    assert ticket.first_response_due == START + timedelta(hours=29)

    assert (await sam.say("/reply 1 A new kettle is on its way.")).text == (
        "Sent to the member of C-000001."
    )
    await desk.deliver()
    assert [r.text for r in alice.pushed()] == [
        "Reply on your ticket C-000001:\nA new kettle is on its way."
    ]
    assert (await desk.ticket()).first_response_at == START + timedelta(hours=5)

    await sam.say("/resolve 1 Replaced.")
    await desk.deliver()
    [asked] = alice.pushed()
    assert asked.text == (
        "Your ticket C-000001 is resolved.\nReplaced.\n"
        "How did we do? Rate 1 (bad) to 5 (great): /rate C-000001 5. "
        "Not solved? Tell us with /ticket C-000001 TEXT."
    )
    assert [b.action for b in asked.buttons] == [
        *(f"RATE:C-000001:{n}" for n in range(1, 6)),
        "REOPEN:C-000001",
    ]

    assert (await alice.say("5")).text == "Thank you! You rated C-000001 5 of 5."  # a digit
    assert (await alice.say("/rate C-000001 1")).text == "You rated C-000001 already. Thank you!"
    assert (await desk.ticket()).score == 5

    clock.advance(days=3)
    assert (await alice.say("/ticket 1 it leaks again")).text == (
        "C-000001 is reopened; we will get back to you."
    )
    await sam.say("/resolve 1")
    await desk.deliver()
    alice.pushed()
    assert (await alice.say("6")).text == "C-000001 is reopened; we will get back to you."
    assert (await desk.ticket()).state == "assigned"
    await sam.say("/resolve 1")
    clock.advance(days=8)
    assert await hook(desk.services) == 1
    assert (await desk.ticket()).state == "closed"

    later = await alice.say("/ticket C-000001 and again")
    assert later.text.startswith(
        "C-000001 is closed, so this is a new ticket that refers to it.\n"
        "Your complaint is filed as C-000002."
    )
    assert (await desk.ticket(2)).refers_to_id == 1
    assert (await desk.ticket(2)).category == "other"
    assert await desk.trail() == [
        "filed (other)",
        "took",
        "waiting on the member",
        "answered",
        "replied",
        "resolved",
        "rated 5",
        "reopened",
        "resolved",
        "reopened",
        "resolved",
        "closed",
    ]
    metrics = desk.services.metrics.render().decode()
    assert "memberbot_tickets_total 2.0" in metrics
    assert 'memberbot_ticket_scores_total{score="5"} 1.0' in metrics
    assert "memberbot_ticket_first_response_hours_count 1.0" in metrics
    tickets_list = await alice.say("/tickets")
    assert tickets_list.text == (
        "Your complaints:\n"
        "• C-000002 · Other · open · 2026-03-21 15:00\n"
        "• C-000001 · Other · closed · 2026-03-10 10:00"
    )


async def test_two_staff_taking_one_ticket_at_once_one_wins(desk):
    await desk.alice.say("/complain late")

    answers = await asyncio.gather(desk.sam.say("/take 1"), desk.tina.say("/take 1"))

    texts = sorted(a.text for a in answers)
    assert texts in (
        ["C-000001 is already taken by tina.", "C-000001 is yours."],
        ["C-000001 is already taken by sam.", "C-000001 is yours."],
    )
    assert await desk.trail() == ["filed (other)", "took"]


STAFF_ACTIONS = ["/take 1", "/reply 1 hi", "/wait 1 why?", "/resolve 1 ok", "/assign 1 #2", "/open"]


@pytest.mark.parametrize("said", STAFF_ACTIONS)
async def test_members_and_moderators_cannot_work_tickets(desk, chat, core, said):
    await desk.alice.say("/complain late")
    mo = chat("mo")
    async with core.services.db.transaction() as session:
        community, _ = await communities.upsert(session, "tea", {"names": {"en": "Tea"}}, START)
    await desk.grant(mo, roles.MODERATOR, community.id)

    for who in (desk.alice, mo):
        assert (await who.say(said)).text == REFUSAL
    ticket = await desk.ticket()
    assert (ticket.state, ticket.assignee_id) == ("open", None)
    assert await desk.trail() == ["filed (other)"]


async def test_canned_replies_and_assign(desk):
    desk.rules("complaints", canned={"sorry": "We are sorry; a refund is on its way."})
    await desk.alice.say("/complain late")
    tina = await desk.probe.member(desk.tina)

    assert (await desk.sam.say(f"/assign 1 #{tina.id}")).text == "C-000001 is now tina's."
    assert (await desk.sam.say("/reply 1 #sorry")).text == "Sent to the member of C-000001."
    assert (await desk.sam.say("/reply 1 #nope")).text == "There is no canned reply #nope."
    await desk.deliver()
    assert [r.text for r in desk.alice.pushed()] == [
        "Reply on your ticket C-000001:\nWe are sorry; a refund is on its way."
    ]
    assert (await desk.ticket()).assignee_id == tina.id
    assert (await desk.alice.say("/assign 1 #1")).text == REFUSAL


async def test_open_lists_tickets_by_time_left(desk, clock):
    await desk.alice.say("/complain one")
    clock.advance(hours=1)
    await desk.alice.say("/complain two")
    await desk.sam.say("/take 2")
    clock.advance(hours=24)

    reply = await desk.sam.say("/open")

    assert reply.text == (
        "Open tickets:\n"
        "• C-000001 · open · 1h00m overdue · nobody\n"
        "• C-000002 · being handled · 0h00m left · sam"
    )


async def test_a_low_score_alerts_the_staff_chat(desk):
    await desk.alice.say("/complain late")
    await desk.sam.say("/resolve 1 done")
    await desk.deliver()
    desk.posted()

    assert (await desk.alice.say("评分 C-000001 2")).text == "Thank you! You rated C-000001 2 of 5."
    await desk.deliver()
    assert desk.posted() == ["C-000001 was rated 2 of 5."]


async def test_deadlines_warn_once_and_escalate_once_with_two_schedulers(desk, clock, core):
    desk.rules("complaints", breach_points=30)
    await desk.grant(desk.tina, roles.ADMIN)
    await desk.alice.say("/complain late")
    await desk.sam.say("/take 1")
    await desk.deliver()
    desk.posted()

    clock.advance(hours=19, minutes=11)  # 79.9 %: nothing yet
    assert await hook(desk.services) == 0
    clock.advance(minutes=1)  # 80 %
    assert sorted(await asyncio.gather(hook(desk.services), hook(desk.services))) == [0, 1]
    await desk.deliver()
    warned = "⏰ C-000001 needs a first reply by 2026-03-11 10:00."
    assert desk.posted() == [warned]
    assert [r.text for r in desk.sam.pushed()] == [warned]

    clock.advance(hours=4, minutes=48)  # the deadline
    assert sorted(await asyncio.gather(hook(desk.services), hook(desk.services))) == [0, 1]
    assert await hook(desk.services) == 0
    await desk.deliver()
    escalated = "🚨 C-000001 missed its first-reply deadline; reassign it with /assign."
    assert desk.posted() == [escalated]
    assert [r.text for r in desk.tina.pushed()] == [escalated]
    assert [r.text for r in desk.alice.pushed()] == [
        "Sorry: we did not answer C-000001 in time. 30 points are yours."
    ]
    assert await desk.probe.balance(desk.alice) == 30
    assert "memberbot_ticket_breaches_total 1.0" in desk.services.metrics.render().decode()
    ticket = await desk.ticket()
    assert ticket.escalated
    async with core.services.db.sessions() as session:
        rows = await session.execute(
            select(LedgerEntry.idempotency_key).where(LedgerEntry.reason == "complaint-breach")
        )
        assert list(rows.scalars()) == ["complaint:1:breach"]


async def test_waiting_stops_the_clock_for_deadlines(desk, clock):
    await desk.alice.say("/complain late")
    await desk.sam.say("/wait 1 which order?")

    clock.advance(hours=30)
    assert await hook(desk.services) == 0
    assert (await desk.ticket()).warned_at is None


def test_the_deadlines_hook_is_registered():
    assert ("deadlines", hook) in HOOKS


async def test_linked_accounts_keep_their_tickets(desk, chat):
    alice_tg = chat("a-tg", channel="telegram")
    await alice_tg.say("/complain from telegram")
    code = (await desk.alice.say("/link")).text
    digits = next(word for word in code.split() if word.strip(".:").isdigit())

    await alice_tg.say(digits.strip(".:"))

    listed = (await desk.alice.say("/tickets")).text
    assert "C-000001" in listed
    assert (await desk.alice.say("/ticket C-000001 more")).text == "Added to C-000001."


async def test_business_hours_set_the_promise_and_the_warning(desk, clock):
    desk.rules("complaints", business_hours="09:00-18:00", business_days=(1, 2, 3, 4, 5))

    reply = await desk.alice.say("/complain late")

    assert "(by 2026-03-12 16:00)" in reply.text  # Tue 8 h + Wed 9 h + Thu 7 h
    clock.set(datetime(2026, 3, 12, 11, 11, tzinfo=SHANGHAI))
    assert await hook(desk.services) == 0
    clock.advance(minutes=1)  # 80 % of 24 business hours: Thursday 11:12
    assert await hook(desk.services) == 1


async def test_take_alone_takes_the_ticket_with_the_least_time_left(desk, clock):
    assert (await desk.sam.say("/take")).text == "No open tickets."
    await desk.alice.say("/complain one")
    clock.advance(hours=1)
    await desk.alice.say("/complain two")

    assert (await desk.sam.say("/take")).text == "C-000001 is yours."
    assert (await desk.tina.say("/take")).text == "C-000002 is yours."


async def test_a_refusal_names_the_state_in_the_members_language():
    from bot.core.i18n import Term, Translator
    from handlers.ticket_basics import STATE_LABELS

    zh = Translator("zh_CN")(
        "{number} is {state} already.", number="C-1", state=Term(STATE_LABELS["resolved"])
    )
    en = Translator("en")(
        "{number} is {state} already.", number="C-1", state=Term(STATE_LABELS["resolved"])
    )

    assert en == "C-1 is resolved already."
    assert "resolved" not in zh and zh.startswith("C-1")
